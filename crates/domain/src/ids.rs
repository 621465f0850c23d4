//! Typed identifiers, so a photo id can never be passed where a project id
//! is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// Creates a new, time-ordered identifier.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

typed_id!(
    /// A studio, the tenant that owns everything else.
    TenantId
);
typed_id!(
    /// A studio user who logs in to the web app.
    UserId
);
typed_id!(
    /// A client project, with one portal link.
    ProjectId
);
typed_id!(
    /// A deposit or final invoice of a project.
    InvoiceId
);
typed_id!(
    /// An uploaded photo of a project.
    PhotoId
);
typed_id!(
    /// An API key of a studio.
    ApiKeyId
);
typed_id!(
    /// A queued email notice.
    NoticeId
);
