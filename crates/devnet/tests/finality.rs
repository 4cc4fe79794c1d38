//! Finality as on NEAR: `final` lags the head by `final_lag` blocks (2 by default),
//! `near-final` by one, `optimistic` is the head; queries at a finality read the state as of
//! that block, and `send_tx`/`tx` wait levels follow the same clock. The chains here make
//! blocks only when told (`sandbox_fast_forward`; the block time is an hour), so every height
//! is known.

mod common;

use std::time::Duration;

use chainsig_devnet::{Devnet, DevnetConfig};
use common::*;
use near_jsonrpc_client::methods;
use near_jsonrpc_primitives::types::query::QueryResponseKind;
use near_jsonrpc_primitives::types::transactions::TransactionInfo;
use near_primitives::account::{AccessKey, AccessKeyPermission};
use near_primitives::action::{
    Action, AddKeyAction, CreateAccountAction, DeployContractAction, TransferAction,
};
use near_primitives::hash::CryptoHash;
use near_primitives::transaction::SignedTransaction;
use near_primitives::types::{AccountId, BlockId, BlockReference, Finality};
use near_primitives::views::{FinalExecutionStatus, QueryRequest, TxExecutionStatus};

const OPTIMISTIC: BlockReference = BlockReference::Finality(Finality::None);
const NEAR_FINAL: BlockReference = BlockReference::Finality(Finality::DoomSlug);
const FINAL: BlockReference = BlockReference::Finality(Finality::Final);

/// A devnet that makes blocks only through `sandbox_fast_forward`.
async fn start_manual(home: &std::path::Path, final_lag: Option<u64>) -> Devnet {
    let mut config = DevnetConfig::new(home);
    config.rpc_addr = "127.0.0.1:0".parse().unwrap();
    config.block_time = Duration::from_secs(3600);
    config.tx_timeout = Duration::from_secs(20);
    if let Some(lag) = final_lag {
        config.final_lag = lag;
    }
    Devnet::start(config).await.expect("devnet starts")
}

async fn fast_forward(client: &Client, blocks: u64) {
    client
        .rpc
        .call(
            methods::any::<Result<serde_json::Value, serde_json::Value>>(
                "sandbox_fast_forward",
                serde_json::json!({ "delta_height": blocks }),
            ),
        )
        .await
        .expect("fast forward");
}

/// (height, hash, last_final_block, last_ds_final_block) of the block at `reference`.
async fn block(
    client: &Client,
    reference: BlockReference,
) -> (u64, CryptoHash, CryptoHash, CryptoHash) {
    let b = client
        .rpc
        .call(methods::block::RpcBlockRequest {
            block_reference: reference,
        })
        .await
        .expect("block");
    (
        b.header.height,
        b.header.hash,
        b.header.last_final_block,
        b.header.last_ds_final_block,
    )
}

async fn height(client: &Client, reference: BlockReference) -> u64 {
    block(client, reference).await.0
}

async fn head(client: &Client) -> u64 {
    client
        .rpc
        .call(methods::status::RpcStatusRequest)
        .await
        .expect("status")
        .sync_info
        .latest_block_height
}

/// (balance, block height the answer names) of `account` at `reference`.
async fn balance(client: &Client, account: &AccountId, reference: BlockReference) -> (u128, u64) {
    let r = client
        .rpc
        .call(methods::query::RpcQueryRequest {
            block_reference: reference,
            request: QueryRequest::ViewAccount {
                account_id: account.clone(),
            },
        })
        .await
        .expect("view_account");
    let QueryResponseKind::ViewAccount(v) = r.kind else {
        panic!("not an account")
    };
    (v.amount.as_yoctonear(), r.block_height)
}

/// The test contract's `get` at `reference`.
async fn stored(client: &Client, account: &AccountId, reference: BlockReference) -> Vec<u8> {
    let r = client
        .rpc
        .call(methods::query::RpcQueryRequest {
            block_reference: reference,
            request: QueryRequest::CallFunction {
                account_id: account.clone(),
                method_name: "get".into(),
                args: vec![].into(),
            },
        })
        .await
        .expect("call_function");
    let QueryResponseKind::CallResult(c) = r.kind else {
        panic!("not a call result")
    };
    c.result
}

async fn nonce_at(client: &Client, signer: &near_crypto::Signer, reference: BlockReference) -> u64 {
    let r = client
        .rpc
        .call(methods::query::RpcQueryRequest {
            block_reference: reference,
            request: QueryRequest::ViewAccessKey {
                account_id: signer.get_account_id(),
                public_key: signer.public_key(),
            },
        })
        .await
        .expect("view_access_key");
    let QueryResponseKind::AccessKey(k) = r.kind else {
        panic!("not an access key")
    };
    k.nonce
}

async fn broadcast(client: &Client, tx: SignedTransaction) -> CryptoHash {
    client
        .rpc
        .call(methods::broadcast_tx_async::RpcBroadcastTxAsyncRequest {
            signed_transaction: tx,
        })
        .await
        .expect("broadcast_tx_async")
}

async fn tx_status(
    client: &Client,
    h: CryptoHash,
    sender: &AccountId,
    wait: TxExecutionStatus,
) -> near_jsonrpc_client::methods::tx::RpcTransactionResponse {
    client
        .rpc
        .call(methods::tx::RpcTransactionStatusRequest {
            transaction_info: TransactionInfo::TransactionId {
                tx_hash: h,
                sender_account_id: sender.clone(),
            },
            wait_until: wait,
        })
        .await
        .expect("tx")
}

/// Sends `actions` and makes blocks until the transaction is final.
async fn settle(
    client: &Client,
    signer: &near_crypto::Signer,
    to: &AccountId,
    actions: Vec<Action>,
) {
    let tx = client.sign(signer, to, actions).await;
    let h = broadcast(client, tx).await;
    for _ in 0..20 {
        fast_forward(client, 1).await;
        let r = tx_status(client, h, &signer.get_account_id(), TxExecutionStatus::None).await;
        if r.final_execution_status == TxExecutionStatus::Final {
            let o = r.final_execution_outcome.expect("outcome").into_outcome();
            assert!(
                matches!(o.status, FinalExecutionStatus::SuccessValue(_)),
                "{o:?}"
            );
            return;
        }
    }
    panic!("transaction {h} never became final");
}

fn new_account(signer: &near_crypto::Signer, amount: u128, code: bool) -> Vec<Action> {
    let mut actions = vec![
        Action::CreateAccount(CreateAccountAction {}),
        Action::Transfer(TransferAction {
            deposit: near(amount),
        }),
        Action::AddKey(Box::new(AddKeyAction {
            public_key: signer.public_key(),
            access_key: AccessKey {
                nonce: 0,
                permission: AccessKeyPermission::FullAccess,
            },
        })),
    ];
    if code {
        actions.push(Action::DeployContract(DeployContractAction {
            code: test_wasm(),
        }));
    }
    actions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_lags_the_head_by_two_blocks_and_near_final_by_one() {
    assert_eq!(DevnetConfig::new("x").final_lag, 2);
    let dir = tempfile::tempdir().unwrap();
    let devnet = start_manual(&dir.path().join("home"), None).await;
    let client = Client::new(&devnet);

    // Near genesis nothing is below it.
    assert_eq!(height(&client, FINAL).await, 0);
    fast_forward(&client, 1).await;
    assert_eq!(height(&client, OPTIMISTIC).await, 1);
    assert_eq!(height(&client, NEAR_FINAL).await, 0);
    assert_eq!(height(&client, FINAL).await, 0);

    fast_forward(&client, 4).await;
    assert_eq!(head(&client).await, 5, "status reports the head");
    assert_eq!(devnet.height(), 5);
    assert_eq!(devnet.final_height(), 3);
    let (h, _, last_final, last_ds_final) = block(&client, OPTIMISTIC).await;
    assert_eq!(h, 5);
    let (near_final_height, near_final_hash, _, _) = block(&client, NEAR_FINAL).await;
    let (final_height, final_hash, _, _) = block(&client, FINAL).await;
    assert_eq!((near_final_height, final_height), (4, 3));
    // The head's header names them as NEAR's does.
    assert_eq!(last_final, final_hash);
    assert_eq!(last_ds_final, near_final_hash);
    // A block asked for by height is that block, final or not.
    let b = block(&client, BlockReference::BlockId(BlockId::Height(5))).await;
    assert_eq!(b.0, 5);
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_read_the_state_of_the_block_their_finality_names() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = start_manual(&dir.path().join("home"), None).await;
    let client = Client::new(&devnet);
    let root = devnet.root_signer().unwrap();
    let alice: AccountId = "alice.test.near".parse().unwrap();
    let alice_signer = new_signer(&alice);
    settle(&client, &root, &alice, new_account(&alice_signer, 10, true)).await;
    settle(
        &client,
        &alice_signer,
        &alice,
        vec![call("set", b"one", 30, near(0))],
    )
    .await;

    // A transfer to alice: included in the next block, executed in the one after.
    let (before, _) = balance(&client, &alice, OPTIMISTIC).await;
    let tx = client
        .sign(
            &root,
            &alice,
            vec![Action::Transfer(TransferAction { deposit: near(1) })],
        )
        .await;
    broadcast(&client, tx).await;
    fast_forward(&client, 2).await;
    let executed = head(&client).await;
    let after = before + near(1).as_yoctonear();
    assert_eq!(
        balance(&client, &alice, OPTIMISTIC).await,
        (after, executed),
        "optimistic is the head"
    );
    assert_eq!(
        balance(&client, &alice, NEAR_FINAL).await,
        (before, executed - 1)
    );
    assert_eq!(
        balance(&client, &alice, FINAL).await,
        (before, executed - 2)
    );
    // A block within the last two, asked for by id, reads that block's state too.
    let at = BlockReference::BlockId(BlockId::Height(executed - 1));
    assert_eq!(balance(&client, &alice, at).await, (before, executed - 1));
    fast_forward(&client, 1).await;
    assert_eq!(balance(&client, &alice, NEAR_FINAL).await.0, after);
    assert_eq!(balance(&client, &alice, FINAL).await.0, before);
    fast_forward(&client, 1).await;
    assert_eq!(
        balance(&client, &alice, FINAL).await,
        (after, executed),
        "final two blocks later"
    );

    // Contract storage and access key nonces the same way. A call to one's own account runs
    // in the block that includes it.
    let nonce = nonce_at(&client, &alice_signer, OPTIMISTIC).await;
    let tx = client
        .sign(
            &alice_signer,
            &alice,
            vec![call("set", b"two", 30, near(0))],
        )
        .await;
    broadcast(&client, tx).await;
    fast_forward(&client, 1).await;
    assert_eq!(stored(&client, &alice, OPTIMISTIC).await, b"two");
    assert_eq!(stored(&client, &alice, NEAR_FINAL).await, b"one");
    assert_eq!(stored(&client, &alice, FINAL).await, b"one");
    assert_eq!(
        nonce_at(&client, &alice_signer, OPTIMISTIC).await,
        nonce + 1
    );
    assert_eq!(nonce_at(&client, &alice_signer, NEAR_FINAL).await, nonce);
    assert_eq!(nonce_at(&client, &alice_signer, FINAL).await, nonce);
    fast_forward(&client, 1).await;
    assert_eq!(stored(&client, &alice, NEAR_FINAL).await, b"two");
    assert_eq!(stored(&client, &alice, FINAL).await, b"one");

    // What `final` reads survives a restart.
    devnet.stop().await;
    let devnet = start_manual(&dir.path().join("home"), None).await;
    let client = Client::new(&devnet);
    assert_eq!(stored(&client, &alice, FINAL).await, b"one");
    assert_eq!(stored(&client, &alice, NEAR_FINAL).await, b"two");
    fast_forward(&client, 1).await;
    assert_eq!(stored(&client, &alice, FINAL).await, b"two");
    assert_eq!(nonce_at(&client, &alice_signer, FINAL).await, nonce + 1);
    devnet.stop().await;
}

/// For each wait level, the head at which `tx` (or `send_tx`) returns for a transfer, with
/// `final_lag` = `lag`: inclusion at `i`, last outcome at `l`.
async fn wait_levels_follow_finality(lag: u64) {
    let dir = tempfile::tempdir().unwrap();
    let devnet = start_manual(&dir.path().join("home"), Some(lag)).await;
    let client = std::sync::Arc::new(Client::new(&devnet));
    let root = devnet.root_signer().unwrap();
    let bob: AccountId = "bob.test.near".parse().unwrap();
    settle(
        &client,
        &root,
        &bob,
        new_account(&new_signer(&bob), 1, false),
    )
    .await;

    let tx = client
        .sign(
            &root,
            &bob,
            vec![Action::Transfer(TransferAction { deposit: near(1) })],
        )
        .await;
    let h = broadcast(&client, tx.clone()).await;
    let start = head(&client).await;
    let levels = [
        TxExecutionStatus::Included,
        TxExecutionStatus::ExecutedOptimistic,
        TxExecutionStatus::IncludedFinal,
        TxExecutionStatus::Executed,
        TxExecutionStatus::Final,
    ];
    let sender = root.get_account_id();
    let mut waiters: Vec<_> = levels
        .iter()
        .map(|level| {
            let (client, sender, level) = (client.clone(), sender.clone(), level.clone());
            tokio::spawn(async move { tx_status(&client, h, &sender, level).await })
        })
        .collect();
    // send_tx of the same transaction (already in the pool) waiting for FINAL.
    let send = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .rpc
                .call(methods::send_tx::RpcSendTransactionRequest {
                    signed_transaction: tx,
                    wait_until: TxExecutionStatus::Final,
                })
                .await
                .expect("send_tx")
        })
    };
    waiters.push(send);
    let mut returned: Vec<Option<(u64, TxExecutionStatus)>> = vec![None; waiters.len()];
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..10 {
        fast_forward(&client, 1).await;
        // Time for every waiter to see the new block.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = head(&client).await;
        for (waiter, slot) in waiters.iter_mut().zip(returned.iter_mut()) {
            if slot.is_none() && waiter.is_finished() {
                let r = waiter.await.unwrap();
                *slot = Some((now, r.final_execution_status));
            }
        }
    }
    let o = tx_status(&client, h, &sender, TxExecutionStatus::None)
        .await
        .final_execution_outcome
        .expect("outcome")
        .into_outcome();
    let block_height = |hash: CryptoHash| {
        let client = client.clone();
        async move { height(&client, BlockReference::BlockId(BlockId::Hash(hash))).await }
    };
    let included = block_height(o.transaction_outcome.block_hash).await;
    let mut last = included;
    for r in &o.receipts_outcome {
        last = last.max(block_height(r.block_hash).await);
    }
    assert_eq!(included, start + 1);
    assert!(last > included, "the transfer ran a block after inclusion");
    let returned: Vec<u64> = returned
        .iter()
        .map(|r| r.as_ref().expect("every waiter returned").0)
        .collect();
    let expected = [
        included,
        last,
        included + lag,
        last.max(included + lag),
        last + lag,
        last + lag,
    ];
    assert_eq!(
        returned, expected,
        "lag {lag}: included {included}, last {last}"
    );
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_levels_follow_finality_two_blocks_behind() {
    wait_levels_follow_finality(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_zero_makes_every_block_final_at_once() {
    wait_levels_follow_finality(0).await;
    let dir = tempfile::tempdir().unwrap();
    let devnet = start_manual(&dir.path().join("home"), Some(0)).await;
    let client = Client::new(&devnet);
    fast_forward(&client, 3).await;
    let (h, hash, last_final, last_ds_final) = block(&client, OPTIMISTIC).await;
    assert_eq!(h, 3);
    assert_eq!(height(&client, NEAR_FINAL).await, 3);
    assert_eq!(height(&client, FINAL).await, 3);
    assert_eq!((last_final, last_ds_final), (hash, hash));
    // A transaction's answer is FINAL as soon as it executed.
    let root = devnet.root_signer().unwrap();
    let carol: AccountId = "carol.test.near".parse().unwrap();
    let tx = client
        .sign(&root, &carol, new_account(&new_signer(&carol), 1, false))
        .await;
    let send = tokio::spawn(async move {
        client
            .rpc
            .call(methods::send_tx::RpcSendTransactionRequest {
                signed_transaction: tx,
                wait_until: TxExecutionStatus::ExecutedOptimistic,
            })
            .await
            .expect("send_tx")
    });
    let client = Client::new(&devnet);
    while !send.is_finished() {
        fast_forward(&client, 1).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = send.await.unwrap();
    assert_eq!(r.final_execution_status, TxExecutionStatus::Final);
    devnet.stop().await;
}
