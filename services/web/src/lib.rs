//! The studio side of Proofsheet: pages for studios, the `/api/v1` JSON API
//! for integrations, and the commands that prepare a database.
//!
//! Pages and API handlers are thin: they parse input, call [`ops`] (which
//! calls the domain) and render. Both surfaces share the same operations, so
//! a rule applies the same way whichever surface a request comes through.

pub mod api;
pub mod auth;
pub mod demo;
pub mod error;
pub mod ops;
pub mod pages;
pub mod stripe;
pub mod throttle;
pub mod upload;

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::http::{HeaderValue, header};
use prometheus_client::registry::Registry;
use proofsheet_config::Config;
use proofsheet_domain::db::Db;
use proofsheet_jobs::Queues;
use proofsheet_media::MediaStore;
use proofsheet_telemetry::HealthCheck;
use proofsheet_telemetry::metrics::{HttpMetrics, track_requests};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

/// Shared state of every handler: configuration, pool, queues, media store and templates.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub queues: Queues,
    pub media: Arc<dyn MediaStore>,
    pub templates: Arc<tera::Tera>,
    /// Stripe client, webhook secret and webhook metrics.
    pub stripe: Arc<stripe::StripeState>,
    /// Requests served by route and status class.
    pub http_metrics: HttpMetrics,
    /// Every metric of the service, for `/metrics` on the admin listener.
    pub metrics_registry: Arc<Registry>,
}

impl AppState {
    /// Connects to PostgreSQL and Redis as configured, and refuses a database
    /// role that bypasses row-level security.
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        let db = Db::connect(&config.database_url, config.database_max_connections)
            .await
            .with_context(|| "could not connect to PostgreSQL (DATABASE_URL); is it running, and migrated with 'proofsheet-web migrate'?")?;
        db.check_role().await?;
        let queues = Queues::connect(&config.redis_url, &config.queue_namespace).await?;
        let media = proofsheet_media::open_store(&config.media_store)
            .context("could not create the media store (check MEDIA_STORE and the S3_ settings)")?;
        let stripe = stripe::StripeState::shared(&config)?;
        let http_metrics = HttpMetrics::default();
        let mut registry = proofsheet_telemetry::metrics::registry();
        http_metrics.register(&mut registry);
        stripe.metrics.register(&mut registry);
        Ok(Self {
            config: Arc::new(config),
            db,
            queues,
            media,
            templates: Arc::new(pages::templates()?),
            stripe,
            http_metrics,
            metrics_registry: Arc::new(registry),
        })
    }
}

/// Builds the public router: pages, API and static assets.
pub fn router(state: AppState) -> Router {
    let http_metrics = state.http_metrics.clone();
    Router::new()
        .merge(pages::routes())
        .nest("/api/v1", api::routes(state.config.max_upload_bytes))
        .merge(stripe_routes())
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            http_metrics,
            track_requests,
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(TraceLayer::new_for_http())
}

/// Builds the Stripe routes: the webhook endpoint and the settings actions.
fn stripe_routes() -> Router<AppState> {
    use axum::extract::DefaultBodyLimit;
    use axum::routing::{get, post};
    Router::new()
        .route(
            "/webhooks/stripe",
            post(stripe::webhook::receive)
                .layer(DefaultBodyLimit::max(stripe::webhook::MAX_WEBHOOK_BYTES)),
        )
        .route("/settings/stripe/connect", post(stripe::billing::connect))
        .route("/settings/stripe/refresh", get(stripe::billing::refresh))
        .route(
            "/settings/stripe/return",
            get(stripe::billing::onboarding_return),
        )
        .route("/settings/plan/subscribe", post(stripe::billing::subscribe))
        .route(
            "/settings/plan/manage",
            post(stripe::billing::manage_billing),
        )
}

/// Builds the admin listener's health checks: PostgreSQL and Redis.
pub fn health_checks(state: &AppState) -> Vec<HealthCheck> {
    let db = state.db.clone();
    let queues = state.queues.clone();
    vec![
        HealthCheck {
            name: "postgres",
            check: Box::new(move || {
                let db = db.clone();
                Box::pin(async move { sqlx_ping(&db).await })
            }),
        },
        HealthCheck {
            name: "redis",
            check: Box::new(move || {
                let queues = queues.clone();
                Box::pin(async move { queues.ping().await.map_err(|e| e.to_string()) })
            }),
        },
    ]
}

async fn sqlx_ping(db: &Db) -> Result<(), String> {
    db.ping().await.map_err(|e| e.to_string())
}

/// Builds the admin router: `/healthz` and `/metrics`.
pub fn admin_router(state: &AppState) -> Router {
    proofsheet_telemetry::admin_router("web", health_checks(state), state.metrics_registry.clone())
}

/// Runs the web service until Ctrl-C or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let public_addr = config.web_addr;
    let admin_addr = config.web_admin_addr;
    let state = AppState::connect(config).await?;

    let admin = admin_router(&state);
    tokio::spawn(async move {
        if let Err(e) = proofsheet_telemetry::serve_admin(admin_addr, admin).await {
            tracing::error!(admin.addr = %admin_addr, error = %e, "admin listener failed");
        }
    });

    let listener = tokio::net::TcpListener::bind(public_addr)
        .await
        .with_context(|| format!("could not listen on WEB_ADDR={public_addr}"))?;
    tracing::info!(web.addr = %public_addr, "web service started");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(proofsheet_telemetry::shutdown_signal())
        .await?;
    tracing::info!("web service stopped");
    Ok(())
}
