//! Telemetry set up in one place: log output, Prometheus metrics, and the
//! admin listener each service runs beside its public one for health checks
//! and metrics.

pub mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use futures::future::BoxFuture;
use prometheus_client::registry::Registry;
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
/// pass, 503 with the failures otherwise. `GET /metrics` responds with every
/// metric in `registry`, in the OpenMetrics text format.
pub fn admin_router(
    service: &'static str,
    checks: Vec<HealthCheck>,
    registry: Arc<Registry>,
) -> Router {
    let state = Arc::new((service, checks));
    let metrics = Router::new()
        .route("/metrics", get(metrics::serve_metrics))
        .with_state(registry);
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(state)
        .merge(metrics)
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

#[cfg(test)]
mod tests {
    use super::metrics::{HttpMetrics, track_requests};
    use super::*;

    #[tokio::test]
    async fn metrics_route_counts_requests() {
        let http = HttpMetrics::default();
        let mut registry = metrics::registry();
        http.register(&mut registry);
        let admin = admin_router("test", Vec::new(), Arc::new(registry));
        let public = Router::new()
            .route("/items/{id}", get(|| async { "item" }))
            .layer(axum::middleware::from_fn_with_state(
                http.clone(),
                track_requests,
            ));
        let base = serve(public).await;
        let admin_base = serve(admin).await;

        for path in ["/items/1", "/items/2", "/nothing-here"] {
            reqwest::get(format!("{base}{path}"))
                .await
                .expect("request");
        }
        assert_eq!(http.count("/items/{id}", "2xx"), 2);
        assert_eq!(http.count("unmatched", "4xx"), 1);

        let response = reqwest::get(format!("{admin_base}/metrics"))
            .await
            .expect("metrics request");
        assert_eq!(response.status(), 200);
        let content_type = response.headers()[axum::http::header::CONTENT_TYPE].clone();
        assert!(
            content_type
                .to_str()
                .is_ok_and(|value| value.starts_with("application/openmetrics-text")),
            "{content_type:?}"
        );
        let body = response.text().await.expect("metrics body");
        assert!(
            body.contains(
                "proofsheet_http_requests_total{route=\"/items/{id}\",status_class=\"2xx\"} 2"
            ),
            "{body}"
        );
        assert!(body.ends_with("# EOF\n"), "{body}");
    }

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        base
    }
}
