//! The six stages of a project and which moves between them are allowed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// Stage of a project, in the order a project goes through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Booked,
    ShootDone,
    Editing,
    PhotosReady,
    Approved,
    Complete,
}

impl Stage {
    /// All stages in order.
    pub const ALL: [Stage; 6] = [
        Stage::Booked,
        Stage::ShootDone,
        Stage::Editing,
        Stage::PhotosReady,
        Stage::Approved,
        Stage::Complete,
    ];

    /// The wire and database name, e.g. `photos_ready`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Booked => "booked",
            Stage::ShootDone => "shoot_done",
            Stage::Editing => "editing",
            Stage::PhotosReady => "photos_ready",
            Stage::Approved => "approved",
            Stage::Complete => "complete",
        }
    }

    /// The name people read, e.g. "Photos ready".
    pub fn label(self) -> &'static str {
        match self {
            Stage::Booked => "Booked",
            Stage::ShootDone => "Shoot done",
            Stage::Editing => "Editing",
            Stage::PhotosReady => "Photos ready",
            Stage::Approved => "Approved",
            Stage::Complete => "Complete",
        }
    }

    /// Position in [`Stage::ALL`], starting at 0.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the client can see photos and respond to them.
    pub fn photos_visible(self) -> bool {
        self >= Stage::PhotosReady
    }

    /// Checks a move made by the studio. The studio may move a project to any
    /// stage, forwards or back to correct a mistake, except into `Approved`:
    /// only the client's "Looks great!" approves. Moving to the current stage
    /// is allowed and changes nothing, so a retried request succeeds.
    pub fn studio_move(self, to: Stage) -> Result<Stage, DomainError> {
        if to == self {
            return Ok(to);
        }
        if to == Stage::Approved {
            return Err(DomainError::invalid(
                "stage",
                "only the client can approve a project, from its portal; choose another stage",
            ));
        }
        Ok(to)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.as_str() == s)
            .ok_or_else(|| {
                DomainError::invalid(
                    "stage",
                    format!(
                        "'{s}' is not a stage; use one of booked, shoot_done, editing, \
                         photos_ready, approved, complete"
                    ),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_in_product_order() {
        let labels: Vec<_> = Stage::ALL.iter().map(|s| s.label()).collect();
        assert_eq!(
            labels,
            [
                "Booked",
                "Shoot done",
                "Editing",
                "Photos ready",
                "Approved",
                "Complete"
            ]
        );
        for (i, stage) in Stage::ALL.iter().enumerate() {
            assert_eq!(stage.index(), i);
        }
        assert!(Stage::Booked < Stage::Complete);
    }

    #[test]
    fn stage_names_round_trip() {
        for stage in Stage::ALL {
            assert_eq!(stage.as_str().parse::<Stage>().ok(), Some(stage));
        }
    }

    #[test]
    fn unknown_stage_name_is_rejected() {
        let err = "shipped".parse::<Stage>().err().map(|e| e.to_string());
        assert!(err.as_deref().is_some_and(|e| e.contains("'shipped'")));
    }

    #[test]
    fn studio_moves_forward_and_back() {
        assert_eq!(
            Stage::Booked.studio_move(Stage::ShootDone).ok(),
            Some(Stage::ShootDone)
        );
        assert_eq!(
            Stage::Editing.studio_move(Stage::Booked).ok(),
            Some(Stage::Booked)
        );
        assert_eq!(
            Stage::Approved.studio_move(Stage::Complete).ok(),
            Some(Stage::Complete)
        );
        assert_eq!(
            Stage::Complete.studio_move(Stage::Editing).ok(),
            Some(Stage::Editing)
        );
    }

    #[test]
    fn studio_cannot_approve() {
        assert!(Stage::PhotosReady.studio_move(Stage::Approved).is_err());
    }

    #[test]
    fn studio_move_to_same_stage_is_no_op() {
        assert_eq!(
            Stage::Editing.studio_move(Stage::Editing).ok(),
            Some(Stage::Editing)
        );
        assert!(Stage::Approved.studio_move(Stage::Approved).is_ok());
    }

    #[test]
    fn photos_visible_from_photos_ready() {
        assert!(!Stage::Editing.photos_visible());
        assert!(Stage::PhotosReady.photos_visible());
        assert!(Stage::Complete.photos_visible());
    }
}
