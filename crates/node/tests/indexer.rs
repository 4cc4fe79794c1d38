//! The node's chain access and indexer against an in-process devnet running the real contract
//! wasm: `ChainClient::call` brings the contract to Running (and refusals come back as
//! `Failed` with the contract's message), concurrent calls from one key all land, the indexer
//! finds exactly the pending `sign` requests (both argument forms) with the right caller,
//! tweak, payload, height and entropy, resumes after its checkpoint, and survives a dead RPC.
//!
//! The wasm is `CHAINSIG_CONTRACT_WASM`, or built here into `<target>/contract-wasm`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chainsig_devnet::client::{sign_transaction, DevnetClient};
use chainsig_devnet::{Devnet, DevnetConfig};
use chainsig_node::chain::{BlockInfo, ChainClient, ChainError, ChainSettings};
use chainsig_node::indexer::{self, ChainEvent, IndexerSettings, SeenRequest};
use chainsig_node::keys::AccountKey;
use chainsig_node::storage::{StorageKey, Store};
use chainsig_primitives::{derive_tweak, DomainId, EcdsaPayload, Payload, PublicKey};
use chainsig_primitives::{SignatureRequest, Tweak};
use near_account_id::AccountId;
use near_crypto::{InMemorySigner, KeyType, SecretKey, Signer};
use near_jsonrpc_client::methods;
use near_primitives::account::{AccessKey, AccessKeyPermission};
use near_primitives::action::{
    Action, AddKeyAction, CreateAccountAction, DeployContractAction, FunctionCallAction,
    TransferAction,
};
use near_primitives::transaction::SignedTransaction;
use near_primitives::types::{Balance, BlockReference, Gas};
use near_primitives::views::TxExecutionStatus;
use serde_json::{json, Value};
use tokio::sync::mpsc;

fn near(n: u128) -> Balance {
    Balance::from_yoctonear(n * 10u128.pow(24))
}

fn account_key(account: &AccountId, secret: &SecretKey) -> AccountKey {
    AccountKey {
        account_id: account.clone(),
        secret_key: secret.clone(),
    }
}

/// Creates `account` with a new full-access key (and `code`), returns the key.
async fn create_account(
    devnet: &DevnetClient,
    root: &Signer,
    account: &AccountId,
    code: Option<Vec<u8>>,
) -> SecretKey {
    let secret = SecretKey::from_random(KeyType::ED25519);
    let mut actions = vec![
        Action::CreateAccount(CreateAccountAction {}),
        Action::Transfer(TransferAction { deposit: near(50) }),
        Action::AddKey(Box::new(AddKeyAction {
            public_key: secret.public_key(),
            access_key: AccessKey {
                nonce: 0,
                permission: AccessKeyPermission::FullAccess,
            },
        })),
    ];
    if let Some(code) = code {
        actions.push(Action::DeployContract(DeployContractAction { code }));
    }
    devnet.execute(root, account, actions).await.unwrap();
    secret
}

fn candidate(account: &AccountId, url: &str) -> Value {
    json!({
        "account_id": account,
        "url": url,
        "tls_public_key": SecretKey::from_random(KeyType::ED25519).public_key().to_string(),
        "sign_public_key": SecretKey::from_random(KeyType::ED25519).public_key().to_string(),
    })
}

fn sign_action(args: Value, deposit: u128) -> Action {
    Action::FunctionCall(Box::new(FunctionCallAction {
        method_name: "sign".into(),
        args: args.to_string().into_bytes(),
        gas: Gas::from_teragas(50),
        deposit: Balance::from_yoctonear(deposit),
    }))
}

/// A user sending `sign` transactions without waiting for their (yielded) outcome.
struct User {
    signer: Signer,
    nonce: u64,
    devnet: DevnetClient,
    contract: AccountId,
}

impl User {
    async fn sign_tx(&mut self, args: Value, deposit: u128) -> SignedTransaction {
        self.nonce += 1;
        let block_hash = self.devnet.latest_block_hash().await.unwrap();
        sign_transaction(
            &self.signer,
            &self.contract,
            self.nonce,
            block_hash,
            vec![sign_action(args, deposit)],
        )
    }

    /// `send_tx` with `wait_until: NONE`: returns once the transaction is accepted.
    async fn send_no_wait(&mut self, args: Value, deposit: u128) -> SignedTransaction {
        let tx = self.sign_tx(args, deposit).await;
        self.devnet
            .rpc()
            .call(methods::send_tx::RpcSendTransactionRequest {
                signed_transaction: tx.clone(),
                wait_until: TxExecutionStatus::None,
            })
            .await
            .unwrap();
        tx
    }

    /// `broadcast_tx_async`.
    async fn send_async(&mut self, args: Value, deposit: u128) -> SignedTransaction {
        let tx = self.sign_tx(args, deposit).await;
        let hash = self
            .devnet
            .rpc()
            .call(methods::broadcast_tx_async::RpcBroadcastTxAsyncRequest {
                signed_transaction: tx.clone(),
            })
            .await
            .unwrap();
        assert_eq!(hash, tx.get_hash());
        tx
    }
}

/// The block in which `tx`'s first receipt (the `sign` call) executed, as `block` reports it.
async fn receipt_block(devnet: &DevnetClient, tx: &SignedTransaction) -> BlockInfo {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = devnet
            .rpc()
            .call(methods::tx::RpcTransactionStatusRequest {
                transaction_info: methods::tx::TransactionInfo::TransactionId {
                    tx_hash: tx.get_hash(),
                    sender_account_id: tx.transaction.signer_id().clone(),
                },
                wait_until: TxExecutionStatus::IncludedFinal,
            })
            .await;
        if let Ok(r) = r {
            if let Some(o) = r.final_execution_outcome {
                let o = o.into_outcome();
                if let Some(receipt) = o.receipts_outcome.first() {
                    let block = devnet
                        .rpc()
                        .call(methods::block::RpcBlockRequest {
                            block_reference: BlockReference::BlockId(
                                near_primitives::types::BlockId::Hash(receipt.block_hash),
                            ),
                        })
                        .await
                        .unwrap();
                    return BlockInfo {
                        height: block.header.height,
                        hash: block.header.hash.0,
                        prev_hash: block.header.prev_hash.0,
                        random_value: block.header.random_value.0,
                    };
                }
            }
        }
        assert!(Instant::now() < deadline, "the sign receipt never executed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn expected(
    predecessor: &AccountId,
    path: &str,
    payload: [u8; 32],
    block: BlockInfo,
) -> SeenRequest {
    SeenRequest {
        request: SignatureRequest {
            tweak: derive_tweak(predecessor.as_str(), path).unwrap(),
            payload: Payload::Ecdsa(EcdsaPayload::from_bytes(payload).unwrap()),
            domain_id: DomainId(0),
        },
        predecessor: predecessor.to_string(),
        height: block.height,
        entropy: block.random_value,
    }
}

/// Receives events until `requests` requests were seen and a Block past all of them came;
/// checks order (requests of a block before its Block, heights consecutive).
async fn collect(
    rx: &mut mpsc::Receiver<ChainEvent>,
    requests: usize,
    mut last_block: Option<u64>,
) -> (Vec<SeenRequest>, Vec<u64>) {
    let mut seen = Vec::new();
    let mut blocks = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let event = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("indexer events in time")
            .expect("the indexer runs");
        match event {
            ChainEvent::Request(r) => {
                if let Some(b) = last_block {
                    assert_eq!(r.height, b + 1, "a request comes before its block");
                }
                seen.push(r);
            }
            ChainEvent::Responded { .. } => {}
            ChainEvent::Block(b) => {
                if let Some(prev) = last_block {
                    assert_eq!(b.height, prev + 1, "blocks in order, none skipped");
                }
                assert!(
                    seen.iter().all(|r| r.height <= b.height),
                    "requests of a block come before the block"
                );
                last_block = Some(b.height);
                blocks.push(b.height);
                if seen.len() >= requests && seen.iter().all(|r| r.height < b.height) {
                    return (seen, blocks);
                }
            }
        }
    }
}

fn root_public_key() -> PublicKey {
    let secret = chainsig_primitives::k256::SecretKey::random(&mut rand_core::OsRng);
    PublicKey::from_affine(*secret.public_key().as_affine()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_client_and_indexer_on_the_devnet() {
    // RUST_LOG=chainsig_node=debug shows the retries.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let wasm = chainsig_devnet::signer_wasm::load().expect("the contract wasm");
    let dir = tempfile::tempdir().unwrap();
    let mut config = DevnetConfig::new(dir.path().join("devnet"));
    config.rpc_addr = "127.0.0.1:0".parse().unwrap();
    config.block_time = Duration::from_millis(50);
    config.tx_timeout = Duration::from_secs(30);
    let devnet = Devnet::start(config).await.expect("devnet starts");
    let url = devnet.rpc_url();
    let dc = DevnetClient::new(&url);
    let root = devnet.root_signer().unwrap();
    let sub =
        |name: &str| -> AccountId { format!("{name}.{}", devnet.root_account()).parse().unwrap() };

    let contract = sub("signer");
    let (n0, n1, n2, alice) = (sub("n0"), sub("n1"), sub("n2"), sub("alice"));
    let contract_key = create_account(&dc, &root, &contract, Some(wasm)).await;
    let n0_key = create_account(&dc, &root, &n0, None).await;
    let n1_key = create_account(&dc, &root, &n1, None).await;
    let n2_key = create_account(&dc, &root, &n2, None).await;
    let alice_key = create_account(&dc, &root, &alice, None).await;

    let client = |account: &AccountId, key: &SecretKey| {
        Arc::new(ChainClient::new(
            &url,
            contract.clone(),
            Some(account_key(account, key)),
        ))
    };
    let reader = Arc::new(ChainClient::new(&url, contract.clone(), None));
    assert_eq!(reader.contract_id(), &contract);

    // ----- init and vote_pk through ChainClient::call -----
    let init = json!({"threshold": 2, "candidates": [
        candidate(&n0, "https://n0.example:3000"),
        candidate(&n1, "https://n1.example:3000"),
    ], "config": {"key_event_attempt_blocks": 100_000}});
    client(&contract, &contract_key)
        .call("init", &init, 30, 0)
        .await
        .expect("init");
    let state: Value = reader.view("state", &json!({})).await.unwrap();
    assert!(state.get("Initializing").is_some(), "{state}");

    let pk = root_public_key();
    let c0 = client(&n0, &n0_key);
    let c1 = client(&n1, &n1_key);
    let vote = json!({"public_key": pk.to_string(), "attempt": 0});
    let done: bool =
        serde_json::from_slice(&c0.call("vote_pk", &vote, 30, 0).await.unwrap()).unwrap();
    assert!(!done);
    // A refusal is Failed with the contract's message, and is not retried.
    match c0.call("vote_pk", &vote, 30, 0).await {
        Err(ChainError::Failed(m)) => assert!(m.contains("has already voted on this"), "{m}"),
        other => panic!("expected Failed, got {other:?}"),
    }
    let done: bool =
        serde_json::from_slice(&c1.call("vote_pk", &vote, 30, 0).await.unwrap()).unwrap();
    assert!(done);
    let state: Value = reader.view("state", &json!({})).await.unwrap();
    assert_eq!(
        state["Running"]["public_key"],
        json!(pk.to_string()),
        "{state}"
    );
    // A view the contract refuses is Failed too.
    assert!(matches!(
        reader.view::<Value>("no_such_method", &json!({})).await,
        Err(ChainError::Failed(_))
    ));
    // A read-only client cannot call.
    assert!(matches!(
        reader.call("join", &json!({}), 30, 0).await,
        Err(ChainError::Failed(_))
    ));

    // ----- concurrent calls from one key: all land, no nonce errors -----
    let c2 = client(&n2, &n2_key);
    let started = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..10 {
        let c2 = c2.clone();
        let info = candidate(&n2, &format!("https://n2.example:{}", 3000 + i));
        calls.spawn(async move {
            let args = json!({
                "url": info["url"],
                "tls_public_key": info["tls_public_key"],
                "sign_public_key": info["sign_public_key"],
            });
            c2.call("join", &args, 30, 0).await
        });
    }
    while let Some(r) = calls.join_next().await {
        r.unwrap().expect("a concurrent join lands");
    }
    eprintln!("10 concurrent calls: {:?}", started.elapsed());
    let state: Value = reader.view("state", &json!({})).await.unwrap();
    let candidates = state["Running"]["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 1, "{state}");
    assert_eq!(candidates[0]["account_id"], json!(n2.as_str()));

    // ----- the indexer finds the sign requests -----
    let store_path = dir.path().join("node.redb");
    let storage_key = StorageKey::generate();
    let store = Arc::new(Store::open(&store_path, &storage_key).unwrap());
    let settings = || IndexerSettings {
        poll_interval: Duration::from_millis(20),
        ..IndexerSettings::default()
    };
    let (tx, mut rx) = mpsc::channel(16);
    let first_indexer = tokio::spawn(indexer::run(reader.clone(), store.clone(), tx, settings()));

    let signer = InMemorySigner::from_secret_key(alice.clone(), alice_key.clone());
    let mut user = User {
        nonce: dc.nonce(&signer).await.unwrap(),
        signer,
        devnet: DevnetClient::new(&url),
        contract: contract.clone(),
    };
    let payload = |b: u8| [b; 32];
    let current = |path: &str, p: [u8; 32]| json!({"request": {"path": path, "payload_v2": {"Ecdsa": hex::encode(p)}, "domain_id": 0}});
    let legacy = |path: &str, p: [u8; 32]| json!({"request": {"payload": p.to_vec(), "path": path, "key_version": 0}});
    let mut sent = Vec::new();
    let t = user.send_no_wait(current("eth/1", payload(1)), 1).await;
    sent.push((t, "eth/1", payload(1)));
    let t = user.send_no_wait(legacy("btc/0", payload(2)), 1).await;
    sent.push((t, "btc/0", payload(2)));
    // Refused by the contract: no deposit (valid arguments, never pending) and a payload
    // that is not a scalar (malformed arguments).
    let refused_no_deposit = user.send_no_wait(current("eth/9", payload(9)), 0).await;
    user.send_no_wait(legacy("eth/x", [0xff; 32]), 1).await;
    let t = user.send_async(current("", payload(3)), 1).await;
    sent.push((t, "", payload(3)));

    let mut want = Vec::new();
    for (t, path, p) in &sent {
        want.push(expected(&alice, path, *p, receipt_block(&dc, t).await));
    }
    let refused_block = receipt_block(&dc, &refused_no_deposit).await;
    let (mut seen, blocks) = collect(&mut rx, want.len(), None).await;
    assert!(blocks.windows(2).all(|w| w[1] == w[0] + 1));
    assert!(blocks.contains(&refused_block.height));
    seen.sort_by_key(|r| (r.height, r.request.payload.as_bytes()[0]));
    want.sort_by_key(|r| (r.height, r.request.payload.as_bytes()[0]));
    assert_eq!(seen, want);
    let tweak: Tweak = derive_tweak(alice.as_str(), "eth/1").unwrap();
    assert_eq!(seen.iter().filter(|r| r.request.tweak == tweak).count(), 1);
    // Each request is pending on chain, by the same JSON the indexer used.
    for r in &seen {
        let pending: bool = reader
            .view("is_pending", &json!({"request": r.request}))
            .await
            .unwrap();
        assert!(pending);
    }
    // block_at agrees with what the indexer reported.
    let h = want[0].height;
    let b = reader
        .block_at(h)
        .await
        .unwrap()
        .expect("a near-final block");
    assert_eq!((b.height, b.random_value), (h, want[0].entropy));
    assert_eq!(reader.block_at(u64::MAX / 2).await.unwrap(), None);

    // ----- restart: resumes after the checkpoint, no duplicates, no gaps -----
    rx.close();
    let mut last = *blocks.last().unwrap();
    let mut late_requests = Vec::new();
    while let Some(e) = rx.recv().await {
        match e {
            ChainEvent::Responded { .. } => {}
            ChainEvent::Block(b) => {
                assert_eq!(b.height, last + 1);
                last = b.height;
            }
            ChainEvent::Request(r) => late_requests.push(r),
        }
    }
    assert!(late_requests.is_empty(), "{late_requests:?}");
    tokio::time::timeout(Duration::from_secs(10), first_indexer)
        .await
        .expect("the indexer stops when its receiver is gone")
        .unwrap();
    assert_eq!(store.checkpoint("indexer").unwrap(), Some(last));
    drop(store);
    // Blocks go by while no indexer runs, with one more request in them.
    let t = user.send_no_wait(current("sol/7", payload(7)), 1).await;
    let later = expected(&alice, "sol/7", payload(7), receipt_block(&dc, &t).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let store = Arc::new(Store::open(&store_path, &storage_key).unwrap());
    let (tx, mut rx) = mpsc::channel(16);
    let second_indexer = tokio::spawn(indexer::run(reader.clone(), store.clone(), tx, settings()));
    let (seen, blocks) = collect(&mut rx, 1, Some(last)).await;
    assert_eq!(blocks[0], last + 1, "resumes right after the checkpoint");
    assert_eq!(seen, vec![later]);
    drop(rx);
    tokio::time::timeout(Duration::from_secs(10), second_indexer)
        .await
        .expect("the indexer stops")
        .unwrap();

    // ----- a dead RPC: errors, not panics; the indexer keeps trying -----
    let dead_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dead = Arc::new(ChainClient::with_settings(
        &format!("http://{dead_addr}"),
        contract.clone(),
        Some(account_key(&n2, &n2_key)),
        ChainSettings {
            backoff: Duration::from_millis(10),
            ..ChainSettings::default()
        },
    ));
    assert!(matches!(dead.latest_block().await, Err(ChainError::Rpc(_))));
    assert!(matches!(dead.block_at(5).await, Err(ChainError::Rpc(_))));
    assert!(matches!(
        dead.view::<Value>("state", &json!({})).await,
        Err(ChainError::Rpc(_))
    ));
    assert!(matches!(
        dead.call("join", &json!({}), 30, 0).await,
        Err(ChainError::Rpc(_))
    ));
    let dead_store = Arc::new(Store::open(&dir.path().join("dead.redb"), &storage_key).unwrap());
    let (tx, mut rx) = mpsc::channel(16);
    let dead_indexer = tokio::spawn(indexer::run(dead, dead_store.clone(), tx, settings()));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!dead_indexer.is_finished(), "the indexer keeps retrying");
    assert!(rx.try_recv().is_err());
    drop(rx);
    tokio::time::timeout(Duration::from_secs(10), dead_indexer)
        .await
        .expect("the indexer stops")
        .unwrap();
    assert_eq!(dead_store.checkpoint("indexer").unwrap(), None);

    devnet.stop().await;
}
