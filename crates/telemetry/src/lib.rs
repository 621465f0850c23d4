//! Telemetry set up in one place: log output, and the admin listener each
//! service runs beside its public one for health checks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use futures::future::BoxFuture;
use proofsheet_config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global log subscriber. `RUST_LOG` overrides the default
/// level, which is `info` for our crates and `warn` for dependencies.
pub fn init(service: &'static str, format: LogFormat) {
    let default = format!(
        "warn,proofsheet_{0}=info,proofsheet_domain=info,proofsheet_jobs=info,proofsheet_mail=info,\
         proofsheet_media=info,tower_http=info",
        service
    );
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // A second call (tests start several services in one process) keeps the first.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// One dependency check of `/healthz`, such as "postgres" or "redis".
pub struct HealthCheck {
    pub name: &'static str,
    pub check: Box<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>,
}

/// Maximum time a single check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The admin router: `GET /healthz` runs every check and responds 200 when all
/// pass, 503 with the failures otherwise.
pub fn admin_router(service: &'static str, checks: Vec<HealthCheck>) -> Router {
    let state = Arc::new((service, checks));
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(state)
}

async fn healthz(
    State(state): State<Arc<(&'static str, Vec<HealthCheck>)>>,
) -> (StatusCode, Json<serde_json::Value>) {
    let (service, checks) = &*state;
    let mut results = serde_json::Map::new();
    let mut healthy = true;
    for check in checks {
        let outcome = tokio::time::timeout(CHECK_TIMEOUT, (check.check)()).await;
        let value = match outcome {
            Ok(Ok(())) => "ok".to_owned(),
            Ok(Err(e)) => {
                healthy = false;
                e
            }
            Err(_) => {
                healthy = false;
                format!("timed out after {} s", CHECK_TIMEOUT.as_secs())
            }
        };
        results.insert(check.name.to_owned(), value.into());
    }
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "service": service,
        "status": if healthy { "ok" } else { "unhealthy" },
        "checks": results,
    });
    (status, Json(body))
}

/// Serves the admin router on `addr` until the process ends.
pub async fn serve_admin(addr: SocketAddr, router: Router) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(admin.addr = %addr, "admin listener started");
    axum::serve(listener, router).await
}

/// Resolves when the process receives Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}
