//! The indexer over a chain whose recent blocks get replaced (what following `optimistic`
//! blocks can meet on NEAR; the devnet never forks): a fake JSON-RPC server serves blocks
//! from a chain the test rewrites, and the indexer must step back over the replaced blocks
//! and index the new ones, in order, with no height left out.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use chainsig_node::chain::{ChainClient, Finality};
use chainsig_node::indexer::{self, ChainEvent, IndexerSettings};
use chainsig_node::storage::{StorageKey, Store};
use near_primitives::hash::{hash, CryptoHash};
use near_primitives::views::{BlockHeaderView, BlockView};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// The chain as the fake server serves it: `blocks[h]` is the block at height `h`, the last
/// one is the head.
type Chain = Arc<Mutex<Vec<BlockView>>>;

fn block(height: u64, prev: CryptoHash, fork: &str) -> BlockView {
    let block_hash = hash(format!("{fork}{height}").as_bytes());
    BlockView {
        author: "producer.near".parse().unwrap(),
        header: BlockHeaderView {
            height,
            prev_height: height.checked_sub(1),
            hash: block_hash,
            prev_hash: prev,
            random_value: hash(block_hash.as_ref()),
            ..Default::default()
        },
        chunks: vec![],
    }
}

/// Replaces the blocks from `from` on with `count` blocks of `fork`.
fn rewrite(chain: &Chain, from: u64, count: u64, fork: &str) {
    let mut blocks = chain.lock().unwrap();
    blocks.truncate(from as usize);
    for height in from..from + count {
        let prev = blocks
            .last()
            .map_or(CryptoHash::default(), |b| b.header.hash);
        blocks.push(block(height, prev, fork));
    }
}

async fn rpc(State(chain): State<Chain>, Json(request): Json<Value>) -> Json<Value> {
    let id = request["id"].clone();
    let params = &request["params"];
    let blocks = chain.lock().unwrap();
    let found = match (request["method"].as_str(), params.get("block_id")) {
        // Any finality: the head (the test plays a chain followed at `optimistic`).
        (Some("block"), None) => blocks.last(),
        (Some("block"), Some(height)) => height.as_u64().and_then(|h| blocks.get(h as usize)),
        _ => None,
    };
    Json(match found {
        Some(b) => json!({ "jsonrpc": "2.0", "id": id, "result": b }),
        None => json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": { "code": -32000, "message": "Server error", "data": "not served here" },
        }),
    })
}

/// The next `Block` event's (height, hash); requests are not expected (no chunks).
async fn next_block(rx: &mut mpsc::Receiver<ChainEvent>) -> (u64, CryptoHash) {
    let event = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an event in time")
        .expect("the indexer runs");
    match event {
        ChainEvent::Block(b) => (b.height, CryptoHash(b.hash)),
        other => panic!("unexpected {other:?}"),
    }
}

fn hash_at(chain: &Chain, height: u64) -> CryptoHash {
    chain.lock().unwrap()[height as usize].header.hash
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_indexer_steps_back_over_replaced_blocks() {
    let chain: Chain = Arc::new(Mutex::new(Vec::new()));
    rewrite(&chain, 0, 2, "a");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/", post(rpc))
        .with_state(chain.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let client = Arc::new(
        ChainClient::new(&url, "signer.near".parse().unwrap(), None)
            .with_finality(Finality::Optimistic),
    );
    assert_eq!(client.finality(), Finality::Optimistic);
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(&dir.path().join("node.redb"), &StorageKey::generate()).unwrap());
    let (tx, mut rx) = mpsc::channel(64);
    let settings = IndexerSettings {
        poll_interval: Duration::from_millis(20),
        ..IndexerSettings::default()
    };
    let indexer = tokio::spawn(indexer::run(client, store.clone(), tx, settings));

    // No checkpoint: it starts at the head, then follows the chain as it grows.
    assert_eq!(next_block(&mut rx).await, (1, hash_at(&chain, 1)));
    rewrite(&chain, 2, 2, "a");
    assert_eq!(next_block(&mut rx).await, (2, hash_at(&chain, 2)));
    assert_eq!(next_block(&mut rx).await, (3, hash_at(&chain, 3)));
    let a3 = hash_at(&chain, 3);

    // Block 3 is replaced (and 4 built on the new one): 3 is indexed again, then 4.
    rewrite(&chain, 3, 2, "b");
    assert_ne!(hash_at(&chain, 3), a3);
    assert_eq!(next_block(&mut rx).await, (3, hash_at(&chain, 3)));
    assert_eq!(next_block(&mut rx).await, (4, hash_at(&chain, 4)));

    // A deeper fork, from height 2 on: back over 4, 3 and 2.
    rewrite(&chain, 2, 4, "c");
    for height in 2..=5 {
        assert_eq!(next_block(&mut rx).await, (height, hash_at(&chain, height)));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(rx.try_recv().is_err(), "nothing more");
    assert_eq!(store.checkpoint("indexer").unwrap(), Some(5));

    drop(rx);
    tokio::time::timeout(Duration::from_secs(10), indexer)
        .await
        .expect("the indexer stops")
        .unwrap();
    server.abort();
}
