//! A whole network in one process: the devnet running the real contract wasm, three nodes
//! (threshold 2) that find each other through the contract, generate the root key, fill their
//! stockpiles and answer `sign` requests; one node stops while requests are in flight and the
//! others still answer all of them; restarted, it serves again with its stored key share.
//!
//! The wasm comes from `CHAINSIG_CONTRACT_WASM` or where `scripts/build-contract.sh` puts it;
//! without it the test says so and passes, unless `CHAINSIG_REQUIRE_CONTRACT_WASM=1`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chainsig_devnet::client::{function_call, DevnetClient};
use chainsig_devnet::{Devnet, DevnetConfig};
use chainsig_node::chain::ChainClient;
use chainsig_node::config::Config;
use chainsig_node::contract_state::format_tls_key;
use chainsig_node::keys::create_tls_key_file;
use chainsig_node::keys::load_account_key;
use chainsig_node::storage::StorageKey;
use chainsig_primitives::{
    derive_public_key, derive_tweak, EcdsaPayload, PublicKey, SignatureResponse,
};
use near_primitives::types::{AccountId, Balance, Gas};
use serde_json::{json, Value};
use tokio::sync::oneshot;

const NODES: usize = 3;
const THRESHOLD: usize = 2;

fn contract_wasm() -> Option<Vec<u8>> {
    let path = match std::env::var_os("CHAINSIG_CONTRACT_WASM") {
        Some(path) => PathBuf::from(path),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
            .join("wasm32-unknown-unknown/release/chainsig_contract.wasm"),
    };
    match std::fs::read(&path) {
        Ok(wasm) => Some(wasm),
        Err(e) => {
            let required = std::env::var("CHAINSIG_REQUIRE_CONTRACT_WASM").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "contract wasm {} unreadable: {e}",
                path.display()
            );
            eprintln!("SKIPPED: contract wasm {} unreadable ({e})", path.display());
            None
        }
    }
}

fn near(n: u128) -> Balance {
    Balance::from_yoctonear(n * 10u128.pow(24))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes one node's files and returns its config and its contract candidate entry.
fn node_files(
    dir: &Path,
    account: &AccountId,
    key_file: &Path,
    rpc: &str,
    contract: &AccountId,
) -> (Config, Value) {
    std::fs::create_dir_all(dir).unwrap();
    let tls = create_tls_key_file(&dir.join("tls.key")).unwrap();
    std::fs::write(
        dir.join("storage.key"),
        StorageKey::generate().to_hex().as_bytes(),
    )
    .unwrap();
    let mesh = format!("127.0.0.1:{}", free_port());
    let toml = format!(
        r#"
[node]
account_id = "{account}"
account_key_file = "{key}"
data_dir = "{data}"
[near]
rpc_url = "{rpc}"
contract_id = "{contract}"
[mesh]
listen = "{mesh}"
public_address = "{mesh}"
tls_key_file = "{tls}"
[http]
listen = "127.0.0.1:{http}"
[storage]
key_file = "{storage}"
[stockpile]
triples_low = 4
triples_high = 12
presignatures_low = 2
presignatures_high = 8
triple_batch = 4
"#,
        key = key_file.display(),
        data = dir.join("data").display(),
        tls = dir.join("tls.key").display(),
        http = free_port(),
        storage = dir.join("storage.key").display(),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, toml).unwrap();
    let config = Config::load(&path).unwrap();
    let public_key = near_crypto::KeyFile::from_file(key_file)
        .unwrap()
        .public_key;
    let candidate = json!({
        "account_id": account,
        "url": mesh,
        "tls_public_key": format_tls_key(&tls.public_key()),
        "sign_public_key": public_key,
    });
    (config, candidate)
}

struct RunningNode {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

fn start_node(config: Config) -> RunningNode {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(chainsig_node::daemon::run_until(config, async {
        let _ = stopped.await;
    }));
    RunningNode { stop, task }
}

async fn stop_node(node: RunningNode) {
    let _ = node.stop.send(());
    node.task.await.unwrap().unwrap();
}

async fn wait_running(client: &DevnetClient, contract: &AccountId) -> PublicKey {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let state: Value = client.view(contract, "state", &json!({})).await.unwrap();
        if let Some(key) = state["Running"]["public_key"].as_str() {
            return PublicKey::parse(key).unwrap();
        }
        assert!(Instant::now() < deadline, "no Running state: {state}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sends `count` sign requests at once and checks every answer against the derived key.
async fn sign_batch(user: &Arc<ChainClient>, root: &PublicKey, tag: u8, count: u8) {
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..count {
        let user = user.clone();
        requests.spawn(async move {
            let path = format!("test/{tag}/{}", i % 3);
            let payload = [tag.wrapping_mul(31).wrapping_add(i).max(1); 32];
            let args = json!({"request": {"path": path, "payload_v2": {"Ecdsa": hex::encode(payload)}, "domain_id": 0}});
            let result = user.call("sign", &args, 50, 1).await;
            (path, payload, result)
        });
    }
    let account = user.account_id().unwrap();
    while let Some(joined) = requests.join_next().await {
        let (path, payload, result) = joined.unwrap();
        let bytes = result.unwrap_or_else(|e| panic!("sign {path}: {e}"));
        let SignatureResponse::Secp256k1(signature) = serde_json::from_slice(&bytes).unwrap();
        let tweak = derive_tweak(account.as_str(), &path).unwrap();
        let derived =
            PublicKey::from_affine(derive_public_key(root.as_affine(), &tweak).unwrap()).unwrap();
        signature
            .verify(&derived, &EcdsaPayload::from_bytes(payload).unwrap())
            .unwrap();
    }
}

fn tgas(n: u64) -> Gas {
    Gas::from_gas(n * 1_000_000_000_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_generate_the_key_and_answer_every_request_through_a_failure() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_test_writer()
        .try_init();
    let Some(wasm) = contract_wasm() else { return };
    let home = tempfile::tempdir().unwrap();
    let devnet_home = home.path().join("devnet");
    let devnet = Devnet::start(DevnetConfig {
        rpc_addr: "127.0.0.1:0".parse().unwrap(),
        block_time: Duration::from_millis(100),
        tx_timeout: Duration::from_secs(60),
        ..DevnetConfig::new(&devnet_home)
    })
    .await
    .unwrap();
    let rpc = devnet.rpc_url();
    let client = Arc::new(DevnetClient::with_home(&rpc, &devnet_home));
    let root = devnet.root_signer().unwrap();
    let sub =
        |name: &str| -> AccountId { format!("{name}.{}", devnet.root_account()).parse().unwrap() };
    let contract_id = sub("signer");
    let contract = client
        .create_account(&root, &contract_id, near(50), Some(wasm))
        .await
        .unwrap();
    let mut configs = Vec::new();
    let mut candidates = Vec::new();
    for i in 0..NODES {
        let account = sub(&format!("n{i}"));
        client
            .create_account(&root, &account, near(20), None)
            .await
            .unwrap();
        let key_file = devnet_home.join("keys").join(format!("{account}.json"));
        let (config, candidate) = node_files(
            &home.path().join(format!("n{i}")),
            &account,
            &key_file,
            &rpc,
            &contract_id,
        );
        configs.push(config);
        candidates.push(candidate);
    }
    let init = json!({"threshold": THRESHOLD, "candidates": candidates});
    client
        .execute(
            &contract,
            &contract_id,
            vec![function_call("init", &init, tgas(50), Balance::ZERO)],
        )
        .await
        .unwrap();
    let user_id = sub("user");
    client
        .create_account(&root, &user_id, near(20), None)
        .await
        .unwrap();
    let user_key = devnet_home.join("keys").join(format!("{user_id}.json"));
    let user_key = load_account_key(&user_key, user_id.as_str()).unwrap();
    // The node's chain client: it keeps nonces straight for many calls at once.
    let user = Arc::new(ChainClient::new(&rpc, contract_id.clone(), Some(user_key)));

    let mut nodes: Vec<Option<RunningNode>> = configs
        .iter()
        .cloned()
        .map(|c| Some(start_node(c)))
        .collect();
    let root_key = wait_running(&client, &contract_id).await;
    sign_batch(&user, &root_key, 1, 8).await;

    // One node stops while a batch is in flight: the others answer every request.
    let batch = sign_batch(&user, &root_key, 2, 8);
    let stop = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        stop_node(nodes[2].take().unwrap()).await;
    };
    tokio::join!(batch, stop);
    sign_batch(&user, &root_key, 3, 6).await;

    // Restarted on its data, it serves with the same key.
    nodes[2] = Some(start_node(configs[2].clone()));
    sign_batch(&user, &root_key, 4, 6).await;
    assert_eq!(wait_running(&client, &contract_id).await, root_key);

    for node in nodes.into_iter().flatten() {
        stop_node(node).await;
    }
    devnet.stop().await;
}
