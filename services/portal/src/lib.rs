//! The client portal of Proofsheet: one permanent link per project, no
//! account needed.
//!
//! Every route under `/p/{token}` first resolves the token to its studio and
//! project. An unknown or rotated token gets the same 404 page whatever the
//! token was, so a bad link reveals nothing. The page works as plain HTML
//! forms; the small embedded script only adds the lightbox, in-place hearts
//! and live updates over Server-Sent Events.
//!
//! [`router`] builds the whole HTTP surface so tests can drive it in-process,
//! and [`run`] is the service's start-up and shutdown.

mod assets;
mod error;
mod handlers;
mod http;
mod link;
mod live;
mod state;
mod templates;
mod view;

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::routing::{get, post};
use proofsheet_config::Config;
use proofsheet_domain::db::Db;
use proofsheet_jobs::Queues;
use proofsheet_telemetry::HealthCheck;
use proofsheet_telemetry::metrics::{HttpMetrics, track_requests};

pub use error::PortalError;
pub use state::{AppState, PortalStripe};

/// Name of this service in logs and on `/healthz`.
const SERVICE: &str = "portal";

/// Builds the portal's router: the pages, form actions, photo and asset
/// routes, with the security headers, error pages and request logging that
/// every response gets.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/p/{token}", get(handlers::page))
        .route("/p/{token}/state", get(handlers::project_state))
        .route("/p/{token}/events", get(handlers::events))
        .route(
            "/p/{token}/favourites/{photo_id}",
            post(handlers::toggle_favourite),
        )
        .route("/p/{token}/responses", post(handlers::respond))
        .route("/p/{token}/invoices/{invoice_id}/pay", post(handlers::pay))
        .route("/p/{token}/photos/{photo_id}/{size}", get(handlers::photo))
        .route("/assets/portal.css", get(assets::stylesheet))
        .route("/assets/portal.js", get(assets::script))
        .route("/assets/accent/{file}", get(assets::accent_stylesheet))
        .fallback(handlers::not_found);
    http::layers(routes, state)
}

/// Runs the portal service until Ctrl-C or SIGTERM.
///
/// Start-up fails with an error naming the cause when PostgreSQL or Redis
/// cannot be reached, when the database role bypasses row-level security, or
/// when a listener cannot bind. On a shutdown signal the server stops
/// accepting connections, ends open live-update streams and lets in-flight
/// requests finish.
pub async fn run(config: Config) -> anyhow::Result<()> {
    proofsheet_telemetry::init(SERVICE, config.log_format);

    // The URLs are left out of these messages because they may carry passwords.
    let db = Db::connect(&config.database_url, config.database_max_connections)
        .await
        .context("could not connect to PostgreSQL (check DATABASE_URL)")?;
    db.check_role()
        .await
        .context("refusing to start with this database role")?;
    let queues = Queues::connect(&config.redis_url, &config.queue_namespace)
        .await
        .context("could not connect to Redis (check REDIS_URL)")?;
    let pubsub = redis::Client::open(config.redis_url.as_str())
        .context("invalid REDIS_URL for live updates")?;
    let media = proofsheet_media::open_store(&config.media_store)
        .context("could not create the media store (check MEDIA_STORE and the S3_ settings)")?;
    let state = AppState::new(db.clone(), media, queues.clone(), pubsub)?;
    match &config.stripe {
        Some(stripe) => state.set_stripe(PortalStripe {
            client: proofsheet_stripe::StripeClient::new(
                stripe.api_base.clone(),
                stripe.secret_key.expose().to_owned(),
            )?,
            portal_base: config
                .public_portal_url
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
        }),
        None => tracing::info!("STRIPE_SECRET_KEY is unset; online invoice payment is off"),
    }

    let http_metrics = HttpMetrics::default();
    let mut registry = proofsheet_telemetry::metrics::registry();
    http_metrics.register(&mut registry);
    let admin =
        proofsheet_telemetry::admin_router(SERVICE, health_checks(db, queues), Arc::new(registry));
    let listener = tokio::net::TcpListener::bind(config.portal_addr)
        .await
        .with_context(|| format!("could not listen on {} (PORTAL_ADDR)", config.portal_addr))?;
    tracing::info!(addr = %config.portal_addr, "portal listening");

    let closing = state.clone();
    let public = router(state).layer(axum::middleware::from_fn_with_state(
        http_metrics,
        track_requests,
    ));
    let server = axum::serve(listener, public).with_graceful_shutdown(async move {
        proofsheet_telemetry::shutdown_signal().await;
        // Live-update streams never end by themselves, so graceful shutdown
        // would wait for them forever.
        closing.close_live_streams();
    });
    tokio::select! {
        served = server => served.context("the portal server failed")?,
        admin = proofsheet_telemetry::serve_admin(config.portal_admin_addr, admin) => {
            admin.with_context(|| {
                format!("the admin listener on {} (PORTAL_ADMIN_ADDR) failed", config.portal_admin_addr)
            })?;
        }
    }
    tracing::info!("portal stopped");
    Ok(())
}

/// Returns the checks behind `/healthz`: a query on PostgreSQL and a PING on Redis.
fn health_checks(db: Db, queues: Queues) -> Vec<HealthCheck> {
    let postgres = HealthCheck {
        name: "postgres",
        check: Box::new(move || {
            let db = db.clone();
            Box::pin(async move {
                sqlx::query("SELECT 1")
                    .execute(db.pool())
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        }),
    };
    let redis = HealthCheck {
        name: "redis",
        check: Box::new(move || {
            let queues = queues.clone();
            Box::pin(async move { queues.ping().await.map_err(|e| e.to_string()) })
        }),
    };
    vec![postgres, redis]
}
