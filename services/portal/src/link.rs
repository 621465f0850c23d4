//! Resolving a portal token to the project it opens.

use proofsheet_domain::db::TenantTx;
use proofsheet_domain::{ProjectId, TenantId};

use crate::error::PortalError;
use crate::state::AppState;

/// Maximum length of a token looked up, in bytes. Issued tokens are `pp_`
/// and 43 base64url characters. The margin leaves room for a longer format
/// later, while junk paths never reach the database.
const MAX_TOKEN_LEN: usize = 128;

/// The studio and project behind a valid portal token.
#[derive(Clone, Copy, Debug)]
pub struct PortalLink {
    pub tenant: TenantId,
    pub project: ProjectId,
}

impl AppState {
    /// Resolves `token`. Every token that opens no project, whether unknown,
    /// rotated or malformed, returns the same [`PortalError::LinkNotFound`].
    pub(crate) async fn open_link(&self, token: &str) -> Result<PortalLink, PortalError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(PortalError::LinkNotFound);
        }
        match self.db().resolve_portal_token(token).await? {
            Some((tenant, project)) => Ok(PortalLink { tenant, project }),
            None => Err(PortalError::LinkNotFound),
        }
    }

    /// Starts a transaction as the link's studio, so row-level security
    /// limits every query to that studio's rows.
    pub(crate) async fn begin(&self, link: &PortalLink) -> Result<TenantTx, PortalError> {
        Ok(self.db().tenant(link.tenant).await?)
    }
}
