//! The state shared by every request handler.

use std::sync::Arc;

use proofsheet_domain::ProjectId;
use proofsheet_domain::db::Db;
use proofsheet_jobs::Queues;
use proofsheet_jobs::live::{self, ProjectEvent};
use proofsheet_media::MediaStore;
use tokio::sync::watch;

use crate::templates::Templates;

/// The portal's shared state: database pool, media store, Redis and the
/// compiled templates. Cloning is cheap.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    media: Arc<dyn MediaStore>,
    queues: Queues,
    pubsub: redis::Client,
    templates: Templates,
    /// Flips to `true` once at shutdown; live-update streams end when it does.
    closing: watch::Sender<bool>,
    /// Stripe, set once at start-up when it is configured.
    stripe: std::sync::OnceLock<PortalStripe>,
}

/// The Stripe client and return-link base for sending a client to Stripe Checkout.
#[derive(Clone, Debug)]
pub struct PortalStripe {
    pub client: proofsheet_stripe::StripeClient,
    /// Base URL of the portal as clients reach it, for Checkout's return links.
    pub portal_base: String,
}

impl AppState {
    /// Builds the state. `pubsub` opens one Redis connection per live-update
    /// stream; `queues` carries the events this service publishes.
    ///
    /// # Errors
    /// When the embedded templates do not compile.
    pub fn new(
        db: Db,
        media: Arc<dyn MediaStore>,
        queues: Queues,
        pubsub: redis::Client,
    ) -> anyhow::Result<Self> {
        let (closing, _) = watch::channel(false);
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                media,
                queues,
                pubsub,
                templates: Templates::new()?,
                closing,
                stripe: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Turns on payments through Stripe Checkout. Only the first call has
    /// an effect.
    pub fn set_stripe(&self, stripe: PortalStripe) {
        let _ = self.inner.stripe.set(stripe);
    }

    pub(crate) fn stripe(&self) -> Option<&PortalStripe> {
        self.inner.stripe.get()
    }

    /// Ends every open live-update stream, now and for streams opened later,
    /// so graceful shutdown does not wait on them.
    pub fn close_live_streams(&self) {
        self.inner.closing.send_replace(true);
    }

    pub(crate) fn db(&self) -> &Db {
        &self.inner.db
    }

    pub(crate) fn media(&self) -> &dyn MediaStore {
        self.inner.media.as_ref()
    }

    pub(crate) fn pubsub(&self) -> &redis::Client {
        &self.inner.pubsub
    }

    pub(crate) fn queues(&self) -> &Queues {
        &self.inner.queues
    }

    pub(crate) fn namespace(&self) -> &str {
        self.inner.queues.namespace()
    }

    pub(crate) fn templates(&self) -> &Templates {
        &self.inner.templates
    }

    pub(crate) fn closing(&self) -> watch::Receiver<bool> {
        self.inner.closing.subscribe()
    }

    /// Tells open pages of the project, in any portal instance, that it
    /// changed. Call only after the change is committed.
    pub(crate) async fn publish(&self, project: ProjectId, event: ProjectEvent) {
        live::publish(
            &self.inner.queues.connection(),
            self.namespace(),
            project,
            event,
        )
        .await;
    }
}
