//! Devnet throughput and latency through JSON-RPC.
//!
//! `cargo run -p chainsig-devnet --profile bench --example bench -- --wasm <signer contract wasm>`
//!
//! Measures, on an in-process devnet reached over HTTP with `near-jsonrpc-client`:
//! - `sign` calls per second: one signer account per worker sends `sign` transactions with
//!   `broadcast_tx_async`; the rate counts calls the contract has executed (its
//!   `system_load().sign_calls_total`), from the first send to the last execution;
//! - plain function calls per second, the same way, on a tiny storage-writing contract;
//! - latency from `send_tx` to the final outcome of one function call (wait_until FINAL);
//! - latency of a view call (`call_function`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chainsig_devnet::{Devnet, DevnetConfig};
use chainsig_primitives::k256::elliptic_curve::Field;
use chainsig_primitives::k256::{ProjectivePoint, Scalar};
use near_crypto::{InMemorySigner, KeyType, SecretKey, Signer};
use near_jsonrpc_client::{methods, JsonRpcClient};
use near_jsonrpc_primitives::types::query::QueryResponseKind;
use near_primitives::account::{AccessKey, AccessKeyPermission};
use near_primitives::action::{
    Action, AddKeyAction, CreateAccountAction, DeployContractAction, FunctionCallAction,
    TransferAction,
};
use near_primitives::hash::{hash, CryptoHash};
use near_primitives::types::{AccountId, Balance, BlockReference, Finality, Gas};
use near_primitives::views::{FinalExecutionStatus, QueryRequest, TxExecutionStatus};
use serde_json::json;

const STORE_WAT: &str = r#"(module
  (import "env" "input" (func $input (param i64)))
  (import "env" "read_register" (func $read_register (param i64 i64)))
  (import "env" "register_len" (func $register_len (param i64) (result i64)))
  (import "env" "storage_write" (func $storage_write (param i64 i64 i64 i64 i64) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "k")
  (func (export "set")
    (call $input (i64.const 0))
    (call $read_register (i64.const 0) (i64.const 1024))
    (drop (call $storage_write (i64.const 1) (i64.const 0)
      (call $register_len (i64.const 0)) (i64.const 1024) (i64.const 1)))))"#;

struct Args {
    wasm: Option<String>,
    workers: usize,
    seconds: u64,
    block_ms: u64,
}

fn args() -> Args {
    let mut a = Args {
        wasm: None,
        workers: 8,
        seconds: 10,
        block_ms: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--wasm" => a.wasm = Some(v),
            "--workers" => a.workers = v.parse().expect("--workers N"),
            "--seconds" => a.seconds = v.parse().expect("--seconds N"),
            "--block-ms" => a.block_ms = v.parse().expect("--block-ms N"),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn near(n: u128) -> Balance {
    Balance::from_yoctonear(n * 10u128.pow(24))
}

/// Signs `actions` from `signer` to `receiver` (the library's own helper).
use chainsig_devnet::client::sign_transaction as sign_tx;

fn fcall(method: &str, args: Vec<u8>, tgas: u64, deposit: u128) -> Action {
    Action::FunctionCall(Box::new(FunctionCallAction {
        method_name: method.into(),
        args,
        gas: Gas::from_gas(tgas * 1_000_000_000_000),
        deposit: Balance::from_yoctonear(deposit),
    }))
}

async fn latest(rpc: &JsonRpcClient) -> CryptoHash {
    rpc.call(methods::block::RpcBlockRequest {
        block_reference: BlockReference::latest(),
    })
    .await
    .expect("block")
    .header
    .hash
}

async fn nonce(rpc: &JsonRpcClient, signer: &Signer) -> u64 {
    let r = rpc
        .call(methods::query::RpcQueryRequest {
            block_reference: BlockReference::Finality(Finality::None),
            request: QueryRequest::ViewAccessKey {
                account_id: signer.get_account_id(),
                public_key: signer.public_key(),
            },
        })
        .await
        .expect("access key");
    match r.kind {
        QueryResponseKind::AccessKey(k) => k.nonce,
        _ => unreachable!(),
    }
}

async fn commit(rpc: &JsonRpcClient, signer: &Signer, receiver: &AccountId, actions: Vec<Action>) {
    let n = nonce(rpc, signer).await + 1;
    let tx = sign_tx(signer, receiver, n, latest(rpc).await, actions);
    let o = rpc
        .call(methods::broadcast_tx_commit::RpcBroadcastTxCommitRequest {
            signed_transaction: tx,
        })
        .await
        .expect("transaction");
    assert!(
        matches!(o.status, FinalExecutionStatus::SuccessValue(_)),
        "{o:?}"
    );
}

async fn view(rpc: &JsonRpcClient, account: &AccountId, method: &str, args: &[u8]) -> Vec<u8> {
    let r = rpc
        .call(methods::query::RpcQueryRequest {
            block_reference: BlockReference::Finality(Finality::None),
            request: QueryRequest::CallFunction {
                account_id: account.clone(),
                method_name: method.into(),
                args: args.to_vec().into(),
            },
        })
        .await
        .expect("view");
    match r.kind {
        QueryResponseKind::CallResult(c) => c.result,
        _ => unreachable!(),
    }
}

fn new_account(signer: &Signer, code: Option<Vec<u8>>) -> Vec<Action> {
    let mut v = vec![
        Action::CreateAccount(CreateAccountAction {}),
        Action::Transfer(TransferAction { deposit: near(100) }),
        Action::AddKey(Box::new(AddKeyAction {
            public_key: signer.public_key(),
            access_key: AccessKey {
                nonce: 0,
                permission: AccessKeyPermission::FullAccess,
            },
        })),
    ];
    if let Some(code) = code {
        v.push(Action::DeployContract(DeployContractAction { code }));
    }
    v
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Sends `make(worker, i)` transactions from every worker for `seconds`; returns how many.
async fn flood(
    url: &str,
    workers: &[Signer],
    receiver: &AccountId,
    seconds: u64,
    make: Arc<dyn Fn(usize, u64) -> Action + Send + Sync>,
) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (w, signer) in workers.iter().enumerate() {
        let rpc = JsonRpcClient::connect(url);
        let signer = signer.clone();
        let receiver = receiver.clone();
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = nonce(&rpc, &signer).await;
            let block = latest(&rpc).await;
            let mut sent = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let tx = sign_tx(&signer, &receiver, n, block, vec![make(w, n)]);
                rpc.call(methods::broadcast_tx_async::RpcBroadcastTxAsyncRequest {
                    signed_transaction: tx,
                })
                .await
                .expect("broadcast");
                sent += 1;
            }
            sent
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("worker");
    }
    total
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = DevnetConfig::new(dir.path().join("home"));
    config.rpc_addr = "127.0.0.1:0".parse().unwrap();
    config.block_time = Duration::from_millis(a.block_ms);
    config.tx_timeout = Duration::from_secs(60);
    let devnet = Devnet::start(config).await.expect("devnet");
    let url = devnet.rpc_url();
    let rpc = JsonRpcClient::connect(&url);
    let root = devnet.root_signer().expect("root key");
    println!(
        "devnet at {url}, block time {} ms, {} workers, {} s per run",
        a.block_ms, a.workers, a.seconds
    );

    let mut workers = Vec::new();
    for i in 0..a.workers {
        let id: AccountId = format!("w{i}.test.near").parse().unwrap();
        let s =
            InMemorySigner::from_secret_key(id.clone(), SecretKey::from_random(KeyType::ED25519));
        commit(&rpc, &root, &id, new_account(&s, None)).await;
        workers.push(s);
    }

    // Plain function calls on a tiny contract.
    let store: AccountId = "store.test.near".parse().unwrap();
    let store_key =
        InMemorySigner::from_secret_key(store.clone(), SecretKey::from_random(KeyType::ED25519));
    let wasm = wat::parse_str(STORE_WAT).expect("wat");
    commit(&rpc, &root, &store, new_account(&store_key, Some(wasm))).await;
    let t0 = Instant::now();
    let make: Arc<dyn Fn(usize, u64) -> Action + Send + Sync> =
        Arc::new(|w, n| fcall("set", format!("{w}:{n}").into_bytes(), 10, 0));
    let sent = flood(&url, &workers, &store, a.seconds, make).await;
    // Wait until the pool drains: a marker transaction sent last is executed last.
    commit(
        &rpc,
        &store_key,
        &store,
        vec![fcall("set", b"done".to_vec(), 10, 0)],
    )
    .await;
    let elapsed = t0.elapsed();
    println!(
        "function calls: {sent} sent, all executed in {:.2} s: {:.0} calls/s",
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64()
    );

    // Latency from send_tx to the final outcome.
    let mut lat = Vec::new();
    for i in 0..20u64 {
        let n = nonce(&rpc, &store_key).await + 1;
        let tx = sign_tx(
            &store_key,
            &store,
            n,
            latest(&rpc).await,
            vec![fcall("set", i.to_le_bytes().to_vec(), 10, 0)],
        );
        let t = Instant::now();
        rpc.call(methods::send_tx::RpcSendTransactionRequest {
            signed_transaction: tx,
            wait_until: TxExecutionStatus::Final,
        })
        .await
        .expect("send_tx");
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "send_tx -> final outcome (call + refund receipt): p50 {:?}, p90 {:?}, max {:?}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        lat[lat.len() - 1]
    );

    let Some(path) = a.wasm else {
        println!("no --wasm: skipping the sign benchmark");
        devnet.stop().await;
        return;
    };
    let wasm = std::fs::read(&path).expect("contract wasm");
    let contract: AccountId = "signer.test.near".parse().unwrap();
    let ck =
        InMemorySigner::from_secret_key(contract.clone(), SecretKey::from_random(KeyType::ED25519));
    let node: AccountId = "node1.test.near".parse().unwrap();
    let nk =
        InMemorySigner::from_secret_key(node.clone(), SecretKey::from_random(KeyType::ED25519));
    commit(&rpc, &root, &contract, new_account(&ck, Some(wasm))).await;
    commit(&rpc, &root, &node, new_account(&nk, None)).await;
    let init = json!({"threshold": 1, "candidates": [{"account_id": node, "url": "https://n1:3000",
        "tls_public_key": nk.public_key().to_string(), "sign_public_key": nk.public_key().to_string()}],
        "config": {"key_event_attempt_blocks": 100_000}});
    commit(
        &rpc,
        &ck,
        &contract,
        vec![fcall("init", init.to_string().into_bytes(), 100, 0)],
    )
    .await;
    // Any key will do as the root key here: nobody responds in this benchmark.
    let secret = Scalar::random(&mut rand_core::OsRng);
    let pk = chainsig_primitives::PublicKey::from_affine(
        (ProjectivePoint::GENERATOR * secret).to_affine(),
    )
    .expect("key")
    .to_near_string();
    commit(
        &rpc,
        &nk,
        &contract,
        vec![fcall(
            "vote_pk",
            json!({"public_key": pk, "attempt": 0})
                .to_string()
                .into_bytes(),
            100,
            0,
        )],
    )
    .await;

    // View call latency.
    let mut vl = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        view(&rpc, &contract, "version", b"{}").await;
        vl.push(t.elapsed());
    }
    vl.sort();
    println!(
        "view call (version): p50 {:?}, p90 {:?}, p99 {:?}",
        percentile(&vl, 0.5),
        percentile(&vl, 0.9),
        percentile(&vl, 0.99)
    );

    let t0 = Instant::now();
    let make: Arc<dyn Fn(usize, u64) -> Action + Send + Sync> = Arc::new(|w, n| {
        let payload = hex::encode(hash(format!("{w}/{n}").as_bytes()).as_ref());
        // Keep the payload a valid scalar: clear the top bit.
        let payload = format!("0{}", &payload[1..]);
        let args =
            json!({"request": {"path": "bench", "payload_v2": {"Ecdsa": payload}, "domain_id": 0}});
        fcall("sign", args.to_string().into_bytes(), 50, 1)
    });
    let sent = flood(&url, &workers, &contract, a.seconds, make).await;
    let sent_by = t0.elapsed();
    let total = loop {
        let load: serde_json::Value =
            serde_json::from_slice(&view(&rpc, &contract, "system_load", b"{}").await)
                .expect("json");
        let done = load["sign_calls_total"].as_u64().unwrap_or(0);
        if done >= sent || t0.elapsed() > sent_by + Duration::from_secs(60) {
            break done;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let elapsed = t0.elapsed();
    println!(
        "sign calls: {sent} sent in {:.2} s, {total} executed in {:.2} s: {:.0} sign calls/s",
        sent_by.as_secs_f64(),
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    devnet.stop().await;
}
