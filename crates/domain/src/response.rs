//! The client's two responses and what each does to the project's stage.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{DomainError, Stage};

/// Longest feedback text kept, in characters. Generous for a written
/// paragraph, small enough that one response cannot bloat a page.
pub const MAX_FEEDBACK_CHARS: usize = 10_000;

/// "Looks great!" (`Approve`) or "Some changes" (`Changes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseKind {
    Approve,
    Changes,
}

impl ResponseKind {
    /// The wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseKind::Approve => "approve",
            ResponseKind::Changes => "changes",
        }
    }
}

impl fmt::Display for ResponseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResponseKind {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "approve" => Ok(ResponseKind::Approve),
            "changes" => Ok(ResponseKind::Changes),
            other => Err(DomainError::invalid(
                "kind",
                format!("'{other}' is not a response; use 'approve' or 'changes'"),
            )),
        }
    }
}

/// A validated response, ready to be appended to the project's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewResponse {
    pub kind: ResponseKind,
    /// Empty for an approval; the client's feedback for changes.
    pub text: String,
}

impl NewResponse {
    /// Validates a response. "Some changes" needs feedback text; an approval
    /// keeps any optional note.
    pub fn parse(kind: &str, text: &str) -> Result<Self, DomainError> {
        let kind: ResponseKind = kind.parse()?;
        let text = text.trim();
        if kind == ResponseKind::Changes && text.is_empty() {
            return Err(DomainError::invalid(
                "text",
                "describe the changes you would like before sending",
            ));
        }
        let chars = text.chars().count();
        if chars > MAX_FEEDBACK_CHARS {
            return Err(DomainError::invalid(
                "text",
                format!(
                    "the feedback is {chars} characters long; shorten it to at most \
                     {MAX_FEEDBACK_CHARS}"
                ),
            ));
        }
        Ok(Self {
            kind,
            text: text.to_owned(),
        })
    }

    /// Returns the stage the project moves to, or `None` when the stage stays.
    /// An approval moves `PhotosReady` to `Approved`; changes after an approval
    /// move `Approved` back to `PhotosReady`. Before photos are ready there is
    /// nothing to respond to, so the response is rejected.
    pub fn stage_after(&self, current: Stage) -> Result<Option<Stage>, DomainError> {
        if !current.photos_visible() {
            return Err(DomainError::Conflict(
                "the photos are not ready yet, so there is nothing to respond to".into(),
            ));
        }
        Ok(match (self.kind, current) {
            (ResponseKind::Approve, Stage::PhotosReady) => Some(Stage::Approved),
            (ResponseKind::Changes, Stage::Approved) => Some(Stage::PhotosReady),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approve() -> NewResponse {
        NewResponse::parse("approve", "").expect("valid approval")
    }

    fn changes() -> NewResponse {
        NewResponse::parse("changes", "Warmer tones, please").expect("valid changes")
    }

    #[test]
    fn approval_moves_photos_ready_to_approved() {
        let next = approve().stage_after(Stage::PhotosReady).ok().flatten();
        assert_eq!(next, Some(Stage::Approved));
    }

    #[test]
    fn changes_after_approval_move_back() {
        let next = changes().stage_after(Stage::Approved).ok().flatten();
        assert_eq!(next, Some(Stage::PhotosReady));
    }

    #[test]
    fn changes_before_approval_keep_stage() {
        let next = changes().stage_after(Stage::PhotosReady).ok().flatten();
        assert_eq!(next, None);
    }

    #[test]
    fn approval_when_approved_or_complete_keeps_stage() {
        assert_eq!(approve().stage_after(Stage::Approved).ok().flatten(), None);
        assert_eq!(approve().stage_after(Stage::Complete).ok().flatten(), None);
    }

    #[test]
    fn response_before_photos_ready_conflicts() {
        assert!(approve().stage_after(Stage::Editing).is_err());
        assert!(changes().stage_after(Stage::Booked).is_err());
    }

    #[test]
    fn empty_changes_text_is_rejected() {
        assert!(NewResponse::parse("changes", "   ").is_err());
    }

    #[test]
    fn overlong_feedback_is_rejected() {
        let text = "a".repeat(MAX_FEEDBACK_CHARS + 1);
        assert!(NewResponse::parse("changes", &text).is_err());
    }

    #[test]
    fn unknown_kind_is_rejected() {
        assert!(NewResponse::parse("maybe", "x").is_err());
    }

    #[test]
    fn feedback_is_trimmed() {
        let response = NewResponse::parse("changes", "  crop tighter \n").expect("valid");
        assert_eq!(response.text, "crop tighter");
    }
}
