//! Live updates: a project's Redis channel forwarded as Server-Sent Events.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::Event;
use futures::{Stream, StreamExt};
use proofsheet_domain::ProjectId;
use proofsheet_jobs::live::{self, ProjectEvent};
use tokio::sync::watch;

use crate::error::PortalError;
use crate::state::AppState;

/// Maximum wait for Redis to accept the subscription.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Subscribes to the project's channel and returns its events as SSE events
/// whose data is the event's JSON, such as `"stage"`.
///
/// The subscription is active when this returns, so an event published
/// afterwards reaches the stream. The stream ends when Redis drops the
/// connection (the browser then reconnects) or at shutdown. Payloads that
/// are not a [`ProjectEvent`] are logged and skipped.
pub async fn subscribe(
    state: &AppState,
    project: ProjectId,
) -> Result<impl Stream<Item = Result<Event, Infallible>> + use<>, PortalError> {
    // NOTE: each open page has its own Redis connection. That is simple and
    // isolates pages from each other, but thousands of open pages per
    // instance would call for one shared subscription fanned out in-process.
    let channel = live::channel(state.namespace(), project);
    let subscribed = tokio::time::timeout(SUBSCRIBE_TIMEOUT, async {
        let mut pubsub = state.pubsub().get_async_pubsub().await?;
        pubsub.subscribe(&channel).await?;
        Ok::<_, redis::RedisError>(pubsub)
    })
    .await;
    let pubsub = match subscribed {
        Ok(Ok(pubsub)) => pubsub,
        Ok(Err(e)) => {
            return Err(PortalError::internal(
                e,
                "subscribing to live updates failed",
            ));
        }
        Err(_) => {
            return Err(PortalError::internal(
                anyhow::anyhow!(
                    "no reply from Redis within {} s",
                    SUBSCRIBE_TIMEOUT.as_secs()
                ),
                "subscribing to live updates timed out",
            ));
        }
    };

    let events = pubsub
        .into_on_message()
        .filter_map(move |message| async move { to_event(project, message.get_payload_bytes()) })
        .map(Ok);
    Ok(events.take_until(closed(state.closing())))
}

fn to_event(project: ProjectId, payload: &[u8]) -> Option<Event> {
    match serde_json::from_slice::<ProjectEvent>(payload) {
        Ok(event) => {
            let data = serde_json::to_string(&event).ok()?;
            Some(Event::default().data(data))
        }
        Err(e) => {
            tracing::warn!(project.id = %project, error = %e, "skipped a live event that is not a project event");
            None
        }
    }
}

/// Resolves once the service starts shutting down.
async fn closed(mut closing: watch::Receiver<bool>) {
    // An error means the state, and with it the sender, is gone: also a close.
    let _ = closing.wait_for(|closing| *closing).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_event_is_forwarded() {
        assert!(to_event(ProjectId::new(), br#""stage""#).is_some());
    }

    #[test]
    fn unknown_payload_is_skipped() {
        assert!(to_event(ProjectId::new(), b"not json").is_none());
        assert!(to_event(ProjectId::new(), br#""birthday""#).is_none());
    }
}
