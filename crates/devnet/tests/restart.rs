//! The chain survives a restart, and a damaged home is refused with a clear error.

mod common;

use chainsig_devnet::{Devnet, DevnetConfig, DevnetError};
use common::*;
use near_jsonrpc_client::methods;
use near_primitives::action::{Action, TransferAction};
use near_primitives::types::{BlockId, BlockReference};
use near_primitives::views::FinalExecutionStatus;

async fn block_hash(client: &Client, height: u64) -> near_primitives::hash::CryptoHash {
    client
        .rpc
        .call(methods::block::RpcBlockRequest {
            block_reference: BlockReference::BlockId(BlockId::Height(height)),
        })
        .await
        .expect("block")
        .header
        .hash
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_every_committed_block() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let devnet = start(&home, 10).await;
    let client = Client::new(&devnet);
    let root = devnet.root_signer().unwrap();
    let o = client
        .send(
            &root,
            &root.get_account_id(),
            vec![Action::Transfer(TransferAction { deposit: near(1) })],
        )
        .await;
    assert!(matches!(o.status, FinalExecutionStatus::SuccessValue(_)));
    let nonce = client
        .nonce(&root.get_account_id(), &root.public_key())
        .await;
    devnet.stop().await;

    // Stopped: note what was committed.
    let devnet = start(&home, 10).await;
    let client = Client::new(&devnet);
    let height_after = devnet.height();
    let mut hashes = Vec::new();
    for h in 0..=height_after.min(50) {
        hashes.push(block_hash(&client, h).await);
    }
    assert_eq!(
        client
            .nonce(&root.get_account_id(), &root.public_key())
            .await,
        nonce
    );
    let status = client
        .rpc
        .call(methods::tx::RpcTransactionStatusRequest {
            transaction_info:
                near_jsonrpc_primitives::types::transactions::TransactionInfo::TransactionId {
                    tx_hash: o.transaction.hash,
                    sender_account_id: root.get_account_id(),
                },
            wait_until: near_primitives::views::TxExecutionStatus::Final,
        })
        .await
        .unwrap();
    assert!(status.final_execution_outcome.is_some());
    // The chain goes on from where it stopped, with the same history.
    let o = client
        .send(
            &root,
            &root.get_account_id(),
            vec![Action::Transfer(TransferAction { deposit: near(1) })],
        )
        .await;
    assert!(matches!(o.status, FinalExecutionStatus::SuccessValue(_)));
    devnet.stop().await;
    let devnet = start(&home, 10).await;
    let client = Client::new(&devnet);
    assert!(devnet.height() > height_after);
    for (h, hash) in hashes.iter().enumerate() {
        assert_eq!(
            &block_hash(&client, h as u64).await,
            hash,
            "block {h} changed"
        );
    }
    devnet.stop().await;
}

async fn start_err(home: &std::path::Path) -> DevnetError {
    let mut config = DevnetConfig::new(home);
    config.rpc_addr = "127.0.0.1:0".parse().unwrap();
    match Devnet::start(config).await {
        Ok(_) => panic!("a damaged home must not start"),
        Err(e) => e,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_home_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    start(&home, 10).await.stop().await;

    // Missing database.
    let db = home.join("data").join("chain.redb");
    let saved = std::fs::read(&db).unwrap();
    std::fs::remove_file(&db).unwrap();
    let e = start_err(&home).await;
    assert!(e.to_string().contains("missing"), "{e}");

    // Corrupt database.
    std::fs::write(&db, b"not a database").unwrap();
    let e = start_err(&home).await;
    assert!(matches!(e, DevnetError::Home(_)), "{e}");
    std::fs::write(&db, &saved).unwrap();

    // Corrupt genesis.
    let genesis = home.join("genesis.json");
    let saved_genesis = std::fs::read(&genesis).unwrap();
    std::fs::write(&genesis, b"{").unwrap();
    let e = start_err(&home).await;
    assert!(e.to_string().contains("corrupt"), "{e}");
    std::fs::write(&genesis, &saved_genesis).unwrap();

    // A directory that is not a devnet home.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), b"hello").unwrap();
    let e = start_err(&other).await;
    assert!(e.to_string().contains("not a devnet home"), "{e}");

    // The restored home still starts, and only once at a time.
    let running = start(&home, 10).await;
    let e = start_err(&home).await;
    assert!(e.to_string().contains("in use"), "{e}");
    running.stop().await;
}

/// A devnet process killed with SIGKILL mid-production resumes with every block it had
/// committed (the ones a client saw), unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_keeps_every_committed_block() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_chainsig-devnet"))
            .args([
                "--home",
                home.to_str().unwrap(),
                "--rpc-addr",
                &addr.to_string(),
            ])
            .args(["--block-time", "5"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("devnet binary starts")
    };
    let url = format!("http://{addr}");
    let rpc = near_jsonrpc_client::JsonRpcClient::connect(&url);
    let wait_up = || async {
        for _ in 0..500 {
            if rpc.call(methods::status::RpcStatusRequest).await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("devnet did not come up");
    };

    let mut child = spawn();
    wait_up().await;
    let client = Client {
        rpc: near_jsonrpc_client::JsonRpcClient::connect(&url),
    };
    let root = {
        let key = chainsig_devnet::genesis::Home::new(&home)
            .read_key(&"test.near".parse().unwrap())
            .unwrap();
        near_crypto::InMemorySigner::from_secret_key(key.account_id, key.secret_key)
    };
    // Some transactions, then let blocks pile up and kill the process without warning.
    let o = client
        .send(
            &root,
            &root.get_account_id(),
            vec![Action::Transfer(TransferAction { deposit: near(1) })],
        )
        .await;
    assert!(matches!(o.status, FinalExecutionStatus::SuccessValue(_)));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let seen = client
        .rpc
        .call(methods::status::RpcStatusRequest)
        .await
        .unwrap()
        .sync_info
        .latest_block_height;
    let mut hashes = Vec::new();
    for h in 0..=seen {
        hashes.push(block_hash(&client, h).await);
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let mut child = spawn();
    wait_up().await;
    let client = Client {
        rpc: near_jsonrpc_client::JsonRpcClient::connect(&url),
    };
    let now = client
        .rpc
        .call(methods::status::RpcStatusRequest)
        .await
        .unwrap()
        .sync_info
        .latest_block_height;
    assert!(now >= seen, "lost blocks: saw {seen}, resumed at {now}");
    for (h, hash) in hashes.iter().enumerate() {
        assert_eq!(
            &block_hash(&client, h as u64).await,
            hash,
            "block {h} changed"
        );
    }
    let o = client
        .send(
            &root,
            &root.get_account_id(),
            vec![Action::Transfer(TransferAction { deposit: near(1) })],
        )
        .await;
    assert!(matches!(o.status, FinalExecutionStatus::SuccessValue(_)));
    child.kill().unwrap();
    child.wait().unwrap();
}
