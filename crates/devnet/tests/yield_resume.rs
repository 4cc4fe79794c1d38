//! Yield/resume through the devnet: a resumed yield delivers its payload to the callback, an
//! abandoned one times out after 200 blocks and the callback sees the failure.

mod common;

use std::time::Duration;

use common::*;
use near_jsonrpc_client::methods;
use near_jsonrpc_primitives::types::transactions::TransactionInfo;
use near_primitives::account::{AccessKey, AccessKeyPermission};
use near_primitives::action::{
    Action, AddKeyAction, CreateAccountAction, DeployContractAction, TransferAction,
};
use near_primitives::errors::{ActionErrorKind, FunctionCallError, TxExecutionError};
use near_primitives::hash::CryptoHash;
use near_primitives::types::{AccountId, Balance};
use near_primitives::views::{FinalExecutionOutcomeView, FinalExecutionStatus, TxExecutionStatus};

async fn status(
    client: &Client,
    h: CryptoHash,
    who: &AccountId,
    wait: TxExecutionStatus,
) -> Option<FinalExecutionOutcomeView> {
    let r = client
        .rpc
        .call(methods::tx::RpcTransactionStatusRequest {
            transaction_info: TransactionInfo::TransactionId {
                tx_hash: h,
                sender_account_id: who.clone(),
            },
            wait_until: wait,
        })
        .await
        .expect("tx status");
    r.final_execution_outcome.map(|o| o.into_outcome())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yield_is_resumed_or_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = start(&dir.path().join("home"), 10).await;
    let client = Client::new(&devnet);
    let root = devnet.root_signer().unwrap();
    let c: AccountId = "c.test.near".parse().unwrap();
    let c_signer = new_signer(&c);
    let o = client
        .send(
            &root,
            &c,
            vec![
                Action::CreateAccount(CreateAccountAction {}),
                Action::Transfer(TransferAction { deposit: near(10) }),
                Action::AddKey(Box::new(AddKeyAction {
                    public_key: c_signer.public_key(),
                    access_key: AccessKey {
                        nonce: 0,
                        permission: AccessKeyPermission::FullAccess,
                    },
                })),
                Action::DeployContract(DeployContractAction { code: test_wasm() }),
            ],
        )
        .await;
    assert!(
        matches!(o.status, FinalExecutionStatus::SuccessValue(_)),
        "{o:?}"
    );

    // wait → (yield) ... resume(payload) → the wait transaction returns the payload.
    let tx = client
        .sign(&c_signer, &c, vec![call("wait", b"", 200, Balance::ZERO)])
        .await;
    let wait_hash = client
        .rpc
        .call(methods::broadcast_tx_async::RpcBroadcastTxAsyncRequest {
            signed_transaction: tx,
        })
        .await
        .unwrap();
    // Until the yield exists the `wait` receipt has no outcome.
    let mut tries = 0;
    loop {
        let o = status(&client, wait_hash, &c, TxExecutionStatus::IncludedFinal).await;
        if o.map(|o| !o.receipts_outcome.is_empty()).unwrap_or(false) {
            break;
        }
        tries += 1;
        assert!(tries < 500, "wait never executed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pending = status(&client, wait_hash, &c, TxExecutionStatus::IncludedFinal)
        .await
        .unwrap();
    assert!(
        matches!(pending.status, FinalExecutionStatus::Started),
        "{pending:?}"
    );
    let o = client
        .send(
            &c_signer,
            &c,
            vec![call("resume", b"signature!", 30, Balance::ZERO)],
        )
        .await;
    assert!(
        matches!(o.status, FinalExecutionStatus::SuccessValue(_)),
        "{o:?}"
    );
    let done = status(&client, wait_hash, &c, TxExecutionStatus::Final)
        .await
        .unwrap();
    assert_eq!(
        done.status,
        FinalExecutionStatus::SuccessValue(b"signature!".to_vec())
    );
    // A second resume of the same yield finds nothing.
    let o = client
        .send(
            &c_signer,
            &c,
            vec![call("resume", b"again", 30, Balance::ZERO)],
        )
        .await;
    assert!(
        matches!(o.status, FinalExecutionStatus::Failure(_)),
        "{o:?}"
    );

    // An abandoned yield times out after 200 blocks: the callback sees a failed promise.
    let start_height = devnet.height();
    let tx = client
        .sign(&c_signer, &c, vec![call("wait", b"", 200, Balance::ZERO)])
        .await;
    let h = client
        .rpc
        .call(methods::broadcast_tx_async::RpcBroadcastTxAsyncRequest {
            signed_transaction: tx,
        })
        .await
        .unwrap();
    let done = status(&client, h, &c, TxExecutionStatus::Final)
        .await
        .unwrap();
    assert!(devnet.height() >= start_height + 200, "timed out too early");
    match &done.status {
        FinalExecutionStatus::Failure(TxExecutionError::ActionError(e)) => match &e.kind {
            ActionErrorKind::FunctionCallError(FunctionCallError::ExecutionError(m)) => {
                assert!(m.contains("timeout"), "{m}")
            }
            other => panic!("unexpected {other:?}"),
        },
        other => panic!("unexpected {other:?}"),
    }
    devnet.stop().await;
}

/// `sandbox_fast_forward` reaches a yield timeout at the default block time without waiting
/// 200 blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_forward_reaches_the_yield_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = start(&dir.path().join("home"), 500).await;
    let client = Client::new(&devnet);
    let root = devnet.root_signer().unwrap();
    let c: AccountId = "c.test.near".parse().unwrap();
    let c_signer = new_signer(&c);
    let o = client
        .send(
            &root,
            &c,
            vec![
                Action::CreateAccount(CreateAccountAction {}),
                Action::Transfer(TransferAction { deposit: near(10) }),
                Action::AddKey(Box::new(AddKeyAction {
                    public_key: c_signer.public_key(),
                    access_key: AccessKey {
                        nonce: 0,
                        permission: AccessKeyPermission::FullAccess,
                    },
                })),
                Action::DeployContract(DeployContractAction { code: test_wasm() }),
            ],
        )
        .await;
    assert!(
        matches!(o.status, FinalExecutionStatus::SuccessValue(_)),
        "{o:?}"
    );
    let tx = client
        .sign(&c_signer, &c, vec![call("wait", b"", 200, Balance::ZERO)])
        .await;
    let h = client
        .rpc
        .call(methods::broadcast_tx_async::RpcBroadcastTxAsyncRequest {
            signed_transaction: tx,
        })
        .await
        .unwrap();
    loop {
        let o = status(&client, h, &c, TxExecutionStatus::IncludedFinal).await;
        if o.map(|o| !o.receipts_outcome.is_empty()).unwrap_or(false) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = devnet.height();
    let r = client
        .rpc
        .call(
            methods::any::<Result<serde_json::Value, serde_json::Value>>(
                "sandbox_fast_forward",
                serde_json::json!({ "delta_height": 201 }),
            ),
        )
        .await
        .expect("fast forward");
    assert_eq!(r, serde_json::json!({}));
    assert!(devnet.height() >= before + 201);
    let done = status(&client, h, &c, TxExecutionStatus::Final)
        .await
        .unwrap();
    match &done.status {
        FinalExecutionStatus::Failure(TxExecutionError::ActionError(e)) => {
            assert!(format!("{:?}", e.kind).contains("timeout"), "{e:?}")
        }
        other => panic!("unexpected {other:?}"),
    }
    devnet.stop().await;
}
