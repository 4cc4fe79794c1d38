//! The node's HTTP endpoints, as an operator and Prometheus see them.

use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chainsig_node::http::{router, HttpState, Metrics, NodeStatus};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn state() -> HttpState {
    let status = NodeStatus {
        account_id: "node<1>.test.near".into(),
        participant_id: Some(1),
        contract_state: serde_json::json!({"Running": {"epoch": 0}}),
        last_block: Some(42),
        peers_up: vec![0, 1, 2],
        triples_owned: 12,
        presignatures_owned: 3,
        requests_pending: 5,
        serving_epoch: Some(0),
        problem: None,
    };
    HttpState {
        metrics: Arc::new(Metrics::new()),
        status: Arc::new(RwLock::new(status)),
    }
}

async fn get(state: &HttpState, path: &str) -> (StatusCode, String) {
    let response = router(state.clone())
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn health_state_metrics_and_page() {
    let state = state();
    assert_eq!(
        get(&state, "/health").await,
        (StatusCode::OK, r#"{"status":"ok"}"#.to_string())
    );

    // A node that cannot do its part says so, with why.
    state.status.write().unwrap().problem = Some("no key share for epoch 3".into());
    let (code, body) = get(&state, "/health").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    // (Compared as JSON: the key order depends on serde_json's features in the build.)
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"problem": "no key share for epoch 3", "status": "unhealthy"})
    );
    state.status.write().unwrap().problem = None;

    let (code, body) = get(&state, "/state").await;
    assert_eq!(code, StatusCode::OK);
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(value["contract_state"]["Running"]["epoch"], 0);
    assert_eq!(value["peers_up"], serde_json::json!([0, 1, 2]));

    state.metrics.requests_seen.inc();
    state.metrics.sign_latency_blocks.observe(2.0);
    state.metrics.peers_up.set(3);
    let (code, body) = get(&state, "/metrics").await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        body.contains("chainsig_sign_requests_seen_total 1"),
        "{body}"
    );
    assert!(
        body.contains("chainsig_sign_latency_blocks_bucket{le=\"2\"} 1"),
        "{body}"
    );
    assert!(body.contains("chainsig_sign_latency_ms_count 0"), "{body}");
    assert!(body.contains("chainsig_peers_up 3"), "{body}");

    let (code, page) = get(&state, "/").await;
    assert_eq!(code, StatusCode::OK);
    assert!(page.contains("node&lt;1&gt;.test.near"), "escaped: {page}");
    assert!(!page.contains("node<1>"));

    assert_eq!(get(&state, "/nope").await.0, StatusCode::NOT_FOUND);
}
