//! Live updates for open portal pages, over Redis publish/subscribe.
//!
//! The web service publishes a small event when a project changes; each
//! portal instance subscribed to the project's channel forwards it to the
//! browsers that have the page open, which then fetch the new state. An event
//! carries no data a page could not fetch itself, so a missed one costs only
//! freshness: the page shows the current state on its next load.

use apalis_redis::ConnectionManager;
use proofsheet_domain::ProjectId;
use serde::{Deserialize, Serialize};

/// The kind of change made to a project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectEvent {
    Stage,
    Invoices,
    Photos,
    Favourites,
    Responses,
}

/// Maximum wait for Redis to take a live event.
const PUBLISH_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// Returns the channel name of one project.
pub fn channel(namespace: &str, project: ProjectId) -> String {
    format!("{namespace}:live:project:{project}")
}

/// Publishes an event. A failure is logged and otherwise ignored, because
/// the change itself is already committed and pages catch up on reload.
pub async fn publish(
    connection: &ConnectionManager,
    namespace: &str,
    project: ProjectId,
    event: ProjectEvent,
) {
    let mut connection = connection.clone();
    let payload = match serde_json::to_string(&event) {
        Ok(payload) => payload,
        Err(e) => {
            tracing::warn!(error = %e, "could not serialise a live event");
            return;
        }
    };
    let mut command = redis::cmd("PUBLISH");
    command.arg(channel(namespace, project)).arg(payload);
    let publish = command.query_async::<i64>(&mut connection);
    // A live event is a courtesy: never hold the request for it.
    match tokio::time::timeout(PUBLISH_TIMEOUT, publish).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(project.id = %project, error = %e, "could not publish a live event")
        }
        Err(_) => tracing::warn!(project.id = %project, "publishing a live event timed out"),
    }
}
