//! A whole network in one process: the devnet running the real contract wasm, three nodes
//! (threshold 2) that find each other through the contract, generate the root key, fill their
//! stockpiles and answer `sign` requests; one node stops while requests are in flight and the
//! others still answer all of them; restarted, it serves again with its stored key share.
//!
//! The wasm comes from [`chainsig_devnet::signer_wasm`] (`CHAINSIG_CONTRACT_WASM`, the
//! workspace's build, or a fresh one).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chainsig_devnet::client::{function_call, DevnetClient};
use chainsig_devnet::{Devnet, DevnetConfig};
use chainsig_node::chain::ChainClient;
use chainsig_node::cli::Vote;
use chainsig_node::config::Config;
use chainsig_node::contract_state::format_tls_key;
use chainsig_node::keys::create_tls_key_file;
use chainsig_node::keys::{load_account_key, AccountKey};
use chainsig_node::storage::StorageKey;
use chainsig_primitives::{
    derive_public_key, derive_tweak, EcdsaPayload, PublicKey, SignatureResponse,
};
use near_crypto::Signer;
use near_primitives::types::{AccountId, Balance, Gas};
use serde_json::{json, Value};
use tokio::sync::oneshot;

const NODES: usize = 3;
const THRESHOLD: usize = 2;

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

/// The devnet with the contract initialized for `NODES` candidates, and a user account.
struct LocalNetwork {
    _home: tempfile::TempDir,
    home: PathBuf,
    devnet: Devnet,
    rpc: String,
    client: Arc<DevnetClient>,
    root: Signer,
    contract_id: AccountId,
    configs: Vec<Config>,
    user: Arc<ChainClient>,
}

impl LocalNetwork {
    async fn start(wasm: Vec<u8>) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            )
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_owned();
        let devnet_home = home.join("devnet");
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
        let contract_id = sub(&devnet, "signer");
        let contract = client
            .create_account(&root, &contract_id, near(50), Some(wasm))
            .await
            .unwrap();
        let user_id = sub(&devnet, "user");
        client
            .create_account(&root, &user_id, near(20), None)
            .await
            .unwrap();
        // The node's chain client: it keeps nonces straight for many calls at once.
        let user = Arc::new(ChainClient::new(
            &rpc,
            contract_id.clone(),
            Some(account_key(&home, &user_id)),
        ));
        let mut network = LocalNetwork {
            _home: dir,
            home,
            devnet,
            rpc,
            client,
            root,
            contract_id,
            configs: Vec::new(),
            user,
        };
        let mut candidates = Vec::new();
        for i in 0..NODES {
            candidates.push(network.add_node(i).await);
        }
        // 100 ms blocks: attempts of 8 s.
        let init = json!({"threshold": THRESHOLD, "candidates": candidates,
                          "config": {"key_event_attempt_blocks": 80}});
        network
            .client
            .execute(
                &contract,
                &network.contract_id,
                vec![function_call("init", &init, tgas(50), Balance::ZERO)],
            )
            .await
            .unwrap();
        network
    }

    /// Creates node `i`'s account and files; returns its candidate entry.
    async fn add_node(&mut self, i: usize) -> Value {
        let account = sub(&self.devnet, &format!("n{i}"));
        self.client
            .create_account(&self.root, &account, near(20), None)
            .await
            .unwrap();
        let key_file = self
            .home
            .join("devnet/keys")
            .join(format!("{account}.json"));
        let (config, candidate) = node_files(
            &self.home.join(format!("n{i}")),
            &account,
            &key_file,
            &self.rpc,
            &self.contract_id,
        );
        self.configs.push(config);
        candidate
    }

    async fn state(&self) -> Value {
        self.client
            .view(&self.contract_id, "state", &json!({}))
            .await
            .unwrap()
    }

    /// Waits until `done` holds for the contract state.
    async fn wait_state(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let state = self.state().await;
            if done(&state) {
                return state;
            }
            assert!(Instant::now() < deadline, "waited for {what}: {state}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn wait_running(&self, epoch: u64) -> PublicKey {
        let state = self
            .wait_state(&format!("Running at epoch {epoch}"), |s| {
                s["Running"]["epoch"].as_u64() == Some(epoch)
            })
            .await;
        PublicKey::parse(state["Running"]["public_key"].as_str().unwrap()).unwrap()
    }
}

/// A node's `/state`, over a plain HTTP/1.1 request.
async fn node_state(config: &Config) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(config.http.listen)
        .await
        .unwrap();
    let request = format!(
        "GET /state HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        config.http.listen
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).unwrap();
    let (_, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    serde_json::from_str(body).expect("JSON state")
}

/// Waits until no node tracks a pending request: every node saw every answer on chain.
async fn wait_books_empty(configs: &[Config]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for config in configs {
        loop {
            let pending = node_state(config).await["requests_pending"].as_u64();
            if pending == Some(0) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{pending:?} requests still pending at {}",
                config.node.account_id
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn sub(devnet: &Devnet, name: &str) -> AccountId {
    format!("{name}.{}", devnet.root_account()).parse().unwrap()
}

fn account_key(home: &Path, account: &AccountId) -> AccountKey {
    let path = home.join("devnet/keys").join(format!("{account}.json"));
    load_account_key(&path, account.as_str()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_generate_the_key_and_answer_every_request_through_a_failure() {
    let wasm = chainsig_devnet::signer_wasm::load().expect("the contract wasm");
    let network = LocalNetwork::start(wasm).await;
    let mut nodes: Vec<Option<RunningNode>> = network
        .configs
        .iter()
        .cloned()
        .map(|c| Some(start_node(c)))
        .collect();
    let root_key = network.wait_running(0).await;
    let user = &network.user;
    sign_batch(user, &root_key, 1, 8).await;
    // Followers learn of each answer from the respond on chain.
    wait_books_empty(&network.configs).await;

    // One node stops while a batch is in flight: the others answer every request.
    let batch = sign_batch(user, &root_key, 2, 8);
    let stop = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        stop_node(nodes[2].take().unwrap()).await;
    };
    tokio::join!(batch, stop);
    sign_batch(user, &root_key, 3, 6).await;

    // Restarted on its data, it serves with the same key.
    nodes[2] = Some(start_node(network.configs[2].clone()));
    sign_batch(user, &root_key, 4, 6).await;
    assert_eq!(network.wait_running(0).await, root_key);

    for node in nodes.into_iter().flatten() {
        stop_node(node).await;
    }
    network.devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_joins_and_the_same_key_is_reshared_to_the_new_set() {
    let wasm = chainsig_devnet::signer_wasm::load().expect("the contract wasm");
    let mut network = LocalNetwork::start(wasm).await;
    let mut nodes: Vec<RunningNode> = network.configs.iter().cloned().map(start_node).collect();
    let root_key = network.wait_running(0).await;
    sign_batch(&network.user, &root_key, 1, 4).await;

    // A fourth node starts; not in the contract, it asks to join by itself.
    network.add_node(NODES).await;
    nodes.push(start_node(network.configs[NODES].clone()));
    let joining = sub(&network.devnet, &format!("n{NODES}"));
    network
        .wait_state("the join request", |s| {
            s["Running"]["candidates"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["account_id"] == joining.as_str()))
        })
        .await;
    // The operators of a threshold of participants admit it (`chainsig vote join`).
    let vote = Vote::Join {
        candidate: joining.to_string(),
    };
    let first = chainsig_node::cli::vote(&network.configs[0], &vote)
        .await
        .unwrap();
    assert!(first.contains("more votes are needed"), "{first}");
    let last = chainsig_node::cli::vote(&network.configs[1], &vote)
        .await
        .unwrap();
    assert!(last.contains("resharing"), "{last}");
    // The network reshares the same key to four participants and signs with the newcomer.
    assert_eq!(network.wait_running(1).await, root_key);
    let state = network.state().await;
    assert_eq!(
        state["Running"]["participants"].as_array().unwrap().len(),
        NODES + 1
    );
    sign_batch(&network.user, &root_key, 2, 8).await;

    for node in nodes {
        stop_node(node).await;
    }
    network.devnet.stop().await;
}
