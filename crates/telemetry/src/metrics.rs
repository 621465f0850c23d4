//! Prometheus metrics: the registry each service fills at start-up, its
//! `/metrics` endpoint in the text exposition format, and a counter of HTTP
//! requests by route and status class.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Content type of the OpenMetrics text format, which Prometheus 2.x reads.
const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Route label of requests that matched no route, so unknown paths cannot
/// add a label value each.
const UNMATCHED_ROUTE: &str = "unmatched";

/// Creates the registry of a service. Every metric name starts with
/// `proofsheet_`.
pub fn registry() -> Registry {
    Registry::with_prefix("proofsheet")
}

/// Responds with every metric of `registry` in the OpenMetrics text format.
pub(crate) async fn serve_metrics(State(registry): State<Arc<Registry>>) -> Response {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &registry) {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], body).into_response(),
        Err(error) => {
            tracing::error!(error = %error, "encoding the metrics failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding the metrics failed",
            )
                .into_response()
        }
    }
}

/// Labels of [`HttpMetrics`]: the route template, such as
/// `/api/v1/projects/{id}`, and the status class, such as `2xx`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status_class: String,
}

/// HTTP requests served, by route and status class, as
/// `proofsheet_http_requests_total`.
#[derive(Clone, Debug, Default)]
pub struct HttpMetrics {
    requests: Family<HttpLabels, Counter>,
}

impl HttpMetrics {
    /// Adds the counters to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "http_requests",
            "HTTP requests served, by route template and status class",
            self.requests.clone(),
        );
    }

    /// Returns the count of one route and status class, for tests.
    pub fn count(&self, route: &str, status_class: &str) -> u64 {
        let labels = HttpLabels {
            route: route.to_owned(),
            status_class: status_class.to_owned(),
        };
        self.requests.get_or_create(&labels).get()
    }
}

/// Middleware that counts each request in [`HttpMetrics`]. Add it with
/// `Router::layer`, so the router has set the matched route by the time it
/// runs.
pub async fn track_requests(
    State(metrics): State<HttpMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    let labels = HttpLabels {
        route,
        status_class: format!("{}xx", response.status().as_u16() / 100),
    };
    metrics.requests.get_or_create(&labels).inc();
    response
}
