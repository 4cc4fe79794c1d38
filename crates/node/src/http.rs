//! The node's HTTP face: `/health`, `/metrics` (Prometheus text), `/state` (JSON), and a
//! small status page at `/`. Read-only; it shows nothing secret.

use std::sync::{Arc, RwLock};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus::{Encoder, Histogram, HistogramOpts, IntCounter, IntGauge, Registry, TextEncoder};
use serde::Serialize;
use tokio::net::TcpListener;

/// What `/metrics` exports.
pub struct Metrics {
    registry: Registry,
    pub requests_seen: IntCounter,
    pub signatures_made: IntCounter,
    pub sign_latency_ms: Histogram,
    pub sign_latency_blocks: Histogram,
    pub triples_owned: IntGauge,
    pub presignatures_owned: IntGauge,
    pub peers_up: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let metric = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(metric.clone()))
                .expect("unique metric");
            metric
        };
        let gauge = |name: &str, help: &str| {
            let metric = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(metric.clone()))
                .expect("unique metric");
            metric
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            let metric = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
                .expect("valid metric");
            registry
                .register(Box::new(metric.clone()))
                .expect("unique metric");
            metric
        };
        Self {
            requests_seen: counter(
                "chainsig_sign_requests_seen_total",
                "Sign requests seen on chain",
            ),
            signatures_made: counter(
                "chainsig_signatures_total",
                "Signatures this node led and responded with",
            ),
            sign_latency_ms: histogram(
                "chainsig_sign_latency_ms",
                "From seeing a request to sending its respond, in ms",
                vec![
                    50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 30000.0,
                ],
            ),
            sign_latency_blocks: histogram(
                "chainsig_sign_latency_blocks",
                "From the block with the sign call to the block with the respond",
                vec![1.0, 2.0, 3.0, 4.0, 6.0, 10.0, 20.0, 50.0, 200.0],
            ),
            triples_owned: gauge("chainsig_triples_owned", "Triples this node owns"),
            presignatures_owned: gauge(
                "chainsig_presignatures_owned",
                "Presignatures this node owns",
            ),
            peers_up: gauge(
                "chainsig_peers_up",
                "Participants this node hears from, itself included",
            ),
            registry,
        }
    }

    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding into memory");
        String::from_utf8(buffer).expect("Prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// What `/state` shows: the contract state as this node last read it, and its own view.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeStatus {
    pub account_id: String,
    pub participant_id: Option<u32>,
    /// The contract's `state()` as last read, verbatim.
    pub contract_state: serde_json::Value,
    pub last_block: Option<u64>,
    pub peers_up: Vec<u32>,
    pub triples_owned: usize,
    pub presignatures_owned: usize,
    /// Sign requests seen and not yet known to be answered.
    pub requests_pending: usize,
    /// The epoch whose key share this node signs with, if it serves.
    pub serving_epoch: Option<u64>,
    /// Why this node cannot do its part (then `/health` says it is unhealthy).
    pub problem: Option<String>,
}

#[derive(Clone)]
pub struct HttpState {
    pub metrics: Arc<Metrics>,
    pub status: Arc<RwLock<NodeStatus>>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/state", get(node_state))
        .with_state(state)
}

pub async fn serve(listener: TcpListener, state: HttpState) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

/// 200 `{"status":"ok"}`, or 503 `{"status":"unhealthy","problem":…}` when the node cannot do
/// its part (for instance, a participant without its key share).
async fn health(State(state): State<HttpState>) -> Response {
    match snapshot(&state).problem {
        None => Json(serde_json::json!({"status": "ok"})).into_response(),
        Some(problem) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unhealthy", "problem": problem})),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<HttpState>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

fn snapshot(state: &HttpState) -> NodeStatus {
    state
        .status
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

async fn node_state(State(state): State<HttpState>) -> Json<NodeStatus> {
    Json(snapshot(&state))
}

async fn status_page(State(state): State<HttpState>) -> Html<String> {
    let status = snapshot(&state);
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let contract = serde_json::to_string_pretty(&status.contract_state).unwrap_or_default();
    Html(format!(
        "<!doctype html><title>chainsig node {account}</title>\
         <h1>chainsig node {account}</h1>\
         <p>participant {participant} · last block {block} · peers up {peers:?}</p>\
         <p>triples {triples} · presignatures {presignatures}</p>\
         <h2>contract state</h2><pre>{contract}</pre>",
        account = escape(&status.account_id),
        participant = status
            .participant_id
            .map_or("-".into(), |id| id.to_string()),
        block = status.last_block.map_or("-".into(), |b| b.to_string()),
        peers = status.peers_up,
        triples = status.triples_owned,
        presignatures = status.presignatures_owned,
        contract = escape(&contract),
    ))
}
