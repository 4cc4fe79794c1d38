//! The devnet through its JSON-RPC, driven by `near-jsonrpc-client`.
//!
//! Queries read at `optimistic` (the head): `send` returns once a transaction has executed,
//! which `final` shows a couple of blocks later, as on NEAR (`tests/finality.rs` covers
//! that).

mod common;

use common::*;
use near_crypto::{InMemorySigner, KeyType, SecretKey};
use near_jsonrpc_client::methods;
use near_jsonrpc_primitives::types::query::{QueryResponseKind, RpcQueryError};
use near_jsonrpc_primitives::types::transactions::{RpcTransactionError, TransactionInfo};
use near_primitives::account::{AccessKey, AccessKeyPermission};
use near_primitives::action::{
    Action, AddKeyAction, CreateAccountAction, DeployContractAction, TransferAction,
};
use near_primitives::errors::{
    ActionErrorKind, FunctionCallError, InvalidAccessKeyError, InvalidTxError, TxExecutionError,
};
use near_primitives::hash::hash;
use near_primitives::types::{AccountId, Balance, BlockId, BlockReference, Finality};
use near_primitives::views::{FinalExecutionStatus, QueryRequest, TxExecutionStatus};

fn id(s: &str) -> AccountId {
    s.parse().unwrap()
}

fn create_account_actions(
    signer: &near_crypto::Signer,
    amount: Balance,
    code: Option<Vec<u8>>,
) -> Vec<Action> {
    let mut actions = vec![
        Action::CreateAccount(CreateAccountAction {}),
        Action::Transfer(TransferAction { deposit: amount }),
        Action::AddKey(Box::new(AddKeyAction {
            public_key: signer.public_key(),
            access_key: AccessKey {
                nonce: 0,
                permission: AccessKeyPermission::FullAccess,
            },
        })),
    ];
    if let Some(code) = code {
        actions.push(Action::DeployContract(DeployContractAction { code }));
    }
    actions
}

fn assert_success(o: &near_primitives::views::FinalExecutionOutcomeView) -> Vec<u8> {
    match &o.status {
        FinalExecutionStatus::SuccessValue(v) => v.clone(),
        other => panic!("expected success, got {other:?}: {o:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_contracts_calls_and_views() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = start(&dir.path().join("home"), 10).await;
    let client = Client::new(&devnet);
    let root = devnet.root_signer().unwrap();
    let alice = id("alice.test.near");
    let bob = id("bob.test.near");
    let alice_signer = new_signer(&alice);
    let wasm = test_wasm();

    let o = client
        .send(
            &root,
            &alice,
            create_account_actions(&alice_signer, near(10), Some(wasm.clone())),
        )
        .await;
    assert_success(&o);
    let o = client
        .send(
            &root,
            &bob,
            create_account_actions(&new_signer(&bob), near(5), Some(wasm.clone())),
        )
        .await;
    assert_success(&o);

    // The account as clients see it.
    let r = client
        .rpc
        .call(methods::query::RpcQueryRequest {
            block_reference: BlockReference::Finality(Finality::None),
            request: QueryRequest::ViewAccount {
                account_id: alice.clone(),
            },
        })
        .await
        .unwrap();
    let QueryResponseKind::ViewAccount(view) = r.kind else {
        panic!("not an account")
    };
    assert_eq!(view.code_hash, hash(&wasm));
    assert!(view.amount.as_yoctonear() <= near(10).as_yoctonear());
    assert!(view.amount.as_yoctonear() > near(9).as_yoctonear());

    // A state-changing call, then a view of its effect.
    let o = client
        .send(
            &alice_signer,
            &alice,
            vec![call("set", b"hello", 30, Balance::ZERO)],
        )
        .await;
    assert_success(&o);
    assert_eq!(o.receipts_outcome[0].outcome.logs, vec!["set".to_string()]);
    assert_eq!(client.view(&alice, "get", b"").await, b"hello");

    // Gas is charged: the signer paid something and got a refund receipt.
    assert!(o.transaction_outcome.outcome.tokens_burnt.as_yoctonear() > 0);
    assert!(
        o.receipts_outcome.len() >= 2,
        "refund receipt expected: {o:?}"
    );

    // A panicking call fails with nearcore's error shape.
    let o = client
        .send(
            &alice_signer,
            &alice,
            vec![call("fail", b"", 30, Balance::ZERO)],
        )
        .await;
    match &o.status {
        FinalExecutionStatus::Failure(TxExecutionError::ActionError(e)) => match &e.kind {
            ActionErrorKind::FunctionCallError(FunctionCallError::ExecutionError(msg)) => {
                assert!(msg.contains("boom"), "{msg}")
            }
            other => panic!("unexpected {other:?}"),
        },
        other => panic!("unexpected {other:?}"),
    }

    // A cross-contract call with a callback: alice asks bob, bob answers.
    let bob_root = client
        .send(&root, &bob, vec![call("set", b"world", 30, Balance::ZERO)])
        .await;
    // root is not bob: a function call from another account works (only code/keys need the owner).
    assert_success(&bob_root);
    let o = client
        .send(
            &alice_signer,
            &alice,
            vec![call("call_get", bob.as_bytes(), 100, Balance::ZERO)],
        )
        .await;
    assert_eq!(assert_success(&o), b"world");

    // View queries.
    let r = client
        .rpc
        .call(methods::query::RpcQueryRequest {
            block_reference: BlockReference::Finality(Finality::None),
            request: QueryRequest::ViewState {
                account_id: alice.clone(),
                prefix: b"k".to_vec().into(),
                after_key: None,
                limit: None,
                include_proof: false,
            },
        })
        .await
        .unwrap();
    let QueryResponseKind::ViewState(state) = r.kind else {
        panic!("not state")
    };
    assert_eq!(state.values.len(), 1);
    assert_eq!(state.values[0].value.to_vec(), b"hello");
    let r = client
        .rpc
        .call(methods::query::RpcQueryRequest {
            block_reference: BlockReference::Finality(Finality::None),
            request: QueryRequest::ViewAccessKeyList {
                account_id: alice.clone(),
                after_key: None,
                limit: None,
            },
        })
        .await
        .unwrap();
    let QueryResponseKind::AccessKeyList(keys) = r.kind else {
        panic!("not keys")
    };
    assert_eq!(keys.keys.len(), 1);
    let r = client
        .rpc
        .call(methods::query::RpcQueryRequest {
            block_reference: BlockReference::Finality(Finality::None),
            request: QueryRequest::ViewCode {
                account_id: alice.clone(),
            },
        })
        .await
        .unwrap();
    let QueryResponseKind::ViewCode(code) = r.kind else {
        panic!("not code")
    };
    assert_eq!(code.code, wasm);

    // Unknown account: nearcore's UNKNOWN_ACCOUNT.
    let err = client
        .rpc
        .call(methods::query::RpcQueryRequest {
            block_reference: BlockReference::Finality(Finality::None),
            request: QueryRequest::ViewAccount {
                account_id: id("nobody.test.near"),
            },
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.handler_error(),
            Some(RpcQueryError::UnknownAccount { .. })
        ),
        "{err:?}"
    );

    // Status, blocks, chunks, gas price, validators, tx status.
    let status = client
        .rpc
        .call(methods::status::RpcStatusRequest)
        .await
        .unwrap();
    assert_eq!(status.chain_id, "localnet");
    assert_eq!(status.protocol_version, 88);
    let height = status.sync_info.latest_block_height;
    let block = client
        .rpc
        .call(methods::block::RpcBlockRequest {
            block_reference: BlockReference::BlockId(BlockId::Height(height)),
        })
        .await
        .unwrap();
    assert_eq!(block.header.height, height);
    let chunk = client
        .rpc
        .call(methods::chunk::RpcChunkRequest {
            chunk_reference: near_jsonrpc_primitives::types::chunks::ChunkReference::BlockShardId {
                block_id: BlockId::Hash(block.header.hash),
                shard_id: near_primitives::types::ShardId::new(0),
            },
        })
        .await
        .unwrap();
    assert_eq!(chunk.header.height_included, height);
    let gas = client
        .rpc
        .call(methods::gas_price::RpcGasPriceRequest { block_id: None })
        .await
        .unwrap();
    assert_eq!(gas.gas_price.as_yoctonear(), 100_000_000);
    let v = client
        .rpc
        .call(methods::validators::RpcValidatorRequest {
            epoch_reference: near_primitives::types::EpochReference::Latest,
        })
        .await
        .unwrap();
    assert_eq!(v.current_validators.len(), 1);
    let st = client
        .rpc
        .call(methods::tx::RpcTransactionStatusRequest {
            transaction_info: TransactionInfo::TransactionId {
                tx_hash: o.transaction.hash,
                sender_account_id: alice.clone(),
            },
            wait_until: TxExecutionStatus::Final,
        })
        .await
        .unwrap();
    assert_eq!(st.final_execution_status, TxExecutionStatus::Final);
    let receipt_id = o.transaction_outcome.outcome.receipt_ids[0];
    let receipt = client
        .rpc
        .call(methods::EXPERIMENTAL_receipt::RpcReceiptRequest {
            receipt_reference: near_jsonrpc_primitives::types::receipts::ReceiptReference {
                receipt_id,
            },
        })
        .await
        .unwrap();
    assert_eq!(receipt.receipt_id, receipt_id);
    assert_eq!(receipt.predecessor_id, alice);
    // Every receipt of the cross-contract call (bob's `get`, the callback, the refunds)
    // leads back to the transaction.
    assert!(o.receipts_outcome.len() >= 3, "{o:?}");
    for r in &o.receipts_outcome {
        let origin = client
            .rpc
            .call(
                methods::any::<Result<serde_json::Value, serde_json::Value>>(
                    "EXPERIMENTAL_receipt_to_tx",
                    serde_json::json!({ "receipt_id": r.id }),
                ),
            )
            .await
            .unwrap();
        assert_eq!(
            origin["transaction_hash"],
            serde_json::json!(o.transaction.hash)
        );
        assert_eq!(origin["sender_account_id"], "alice.test.near");
    }
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_transactions_are_refused_with_nearcore_errors() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = start(&dir.path().join("home"), 10).await;
    let client = Client::new(&devnet);
    let root = devnet.root_signer().unwrap();
    let alice = id("alice.test.near");
    let invalid = |e: near_jsonrpc_client::errors::JsonRpcError<RpcTransactionError>| match e
        .handler_error()
    {
        Some(RpcTransactionError::InvalidTransaction { context }) => context.clone(),
        _ => panic!("expected an invalid transaction error, got {e:?}"),
    };

    // Wrong signature: signed by another key than the one named.
    let good = client.sign(&root, &alice, vec![]).await;
    let other = InMemorySigner::from_secret_key(
        root.get_account_id(),
        SecretKey::from_random(KeyType::ED25519),
    );
    let forged = near_primitives::transaction::SignedTransaction::new(
        other.sign(good.get_hash().as_ref()),
        good.transaction.clone(),
    );
    assert_eq!(
        invalid(client.commit(forged).await.unwrap_err()),
        InvalidTxError::InvalidSignature
    );

    // Stale nonce: the same nonce twice.
    let tx = client
        .sign(
            &root,
            &root.get_account_id(),
            vec![Action::Transfer(TransferAction {
                deposit: Balance::from_yoctonear(1),
            })],
        )
        .await;
    let nonce = tx.transaction.nonce().nonce();
    client.commit(tx.clone()).await.unwrap();
    let again = sign_tx(
        &root,
        &root.get_account_id(),
        nonce,
        client.latest_hash().await,
        vec![],
    );
    assert!(matches!(
        invalid(client.commit(again).await.unwrap_err()),
        InvalidTxError::InvalidNonce { .. }
    ));

    // A block hash the chain never had.
    let tx = sign_tx(&root, &alice, nonce + 1, hash(b"no such block"), vec![]);
    assert_eq!(
        invalid(client.commit(tx).await.unwrap_err()),
        InvalidTxError::Expired
    );

    // A contract over the 4 MB limit (a 5.6 MB request: the body limit lets it through).
    let big = vec![0u8; 4 * 1024 * 1024 + 1];
    let tx = client
        .sign(
            &root,
            &root.get_account_id(),
            vec![Action::DeployContract(DeployContractAction { code: big })],
        )
        .await;
    assert!(matches!(
        invalid(client.commit(tx).await.unwrap_err()),
        InvalidTxError::ActionsValidation(
            near_primitives::errors::ActionsValidationError::ContractSizeExceeded { .. }
        )
    ));

    // Unknown signer.
    let ghost = new_signer(&id("ghost.test.near"));
    let tx = sign_tx(&ghost, &alice, 1, client.latest_hash().await, vec![]);
    assert!(matches!(
        invalid(client.commit(tx).await.unwrap_err()),
        InvalidTxError::SignerDoesNotExist { .. }
    ));

    // Unknown access key on a known account.
    let stranger = InMemorySigner::from_secret_key(
        root.get_account_id(),
        SecretKey::from_random(KeyType::ED25519),
    );
    let tx = sign_tx(&stranger, &alice, 1, client.latest_hash().await, vec![]);
    assert!(matches!(
        invalid(client.commit(tx).await.unwrap_err()),
        InvalidTxError::InvalidAccessKeyError(InvalidAccessKeyError::AccessKeyNotFound { .. })
    ));

    // Not enough balance.
    let tx = client
        .sign(
            &root,
            &root.get_account_id(),
            vec![Action::Transfer(TransferAction {
                deposit: near(2_000_000_000),
            })],
        )
        .await;
    assert!(matches!(
        invalid(client.commit(tx).await.unwrap_err()),
        InvalidTxError::NotEnoughBalance { .. }
    ));

    // Function-call access key: only its receiver and methods.
    let limited = new_signer(&root.get_account_id());
    let add = Action::AddKey(Box::new(AddKeyAction {
        public_key: limited.public_key(),
        access_key: AccessKey {
            nonce: 0,
            permission: AccessKeyPermission::FunctionCall(
                near_primitives::account::FunctionCallPermission {
                    allowance: None,
                    receiver_id: alice.to_string(),
                    method_names: vec!["get".into()],
                },
            ),
        },
    }));
    assert_success(&client.send(&root, &root.get_account_id(), vec![add]).await);
    let tx = client
        .sign(&limited, &alice, vec![call("set", b"x", 10, Balance::ZERO)])
        .await;
    assert!(matches!(
        invalid(client.commit(tx).await.unwrap_err()),
        InvalidTxError::InvalidAccessKeyError(InvalidAccessKeyError::MethodNameMismatch { .. })
    ));
    let tx = client
        .sign(
            &limited,
            &alice,
            vec![Action::Transfer(TransferAction {
                deposit: Balance::from_yoctonear(1),
            })],
        )
        .await;
    assert!(matches!(
        invalid(client.commit(tx).await.unwrap_err()),
        InvalidTxError::InvalidAccessKeyError(InvalidAccessKeyError::RequiresFullAccess)
    ));

    // A call to an account that does not exist fails in execution.
    let o = client
        .send(
            &root,
            &id("nobody.test.near"),
            vec![call("get", b"", 10, Balance::ZERO)],
        )
        .await;
    assert!(
        matches!(
            &o.status,
            FinalExecutionStatus::Failure(TxExecutionError::ActionError(e))
                if matches!(e.kind, ActionErrorKind::AccountDoesNotExist { .. })
        ),
        "{o:?}"
    );
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_client_creates_accounts_with_key_files() {
    use chainsig_devnet::client::{function_call, ClientError, DevnetClient};
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let devnet = start(&home, 10).await;
    let client = DevnetClient::with_home(&devnet.rpc_url(), &home);
    let root = devnet.root_signer().unwrap();
    let app = id("app.test.near");
    let signer = client
        .create_account(&root, &app, near(3), Some(test_wasm()))
        .await
        .unwrap();
    // The key file is near-cli's, and it signs for the account.
    let key: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(home.join("keys/app.test.near.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(key["account_id"], "app.test.near");
    assert_eq!(key["public_key"], signer.public_key().to_string());
    let gas = near_primitives::types::Gas::from_gas(30 * TGAS);
    client
        .execute(
            &signer,
            &app,
            vec![function_call(
                "set",
                &serde_json::json!("v"),
                gas,
                Balance::ZERO,
            )],
        )
        .await
        .unwrap();
    let v: String = client
        .view(&app, "get", &serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(v, "v");
    // A second key ("y", the yield id `wait` stores), then view_state page by page.
    let tx = sign_tx(
        &signer,
        &app,
        client.nonce(&signer).await.unwrap() + 1,
        client.latest_block_hash().await.unwrap(),
        vec![function_call(
            "wait",
            &serde_json::json!({}),
            gas,
            Balance::ZERO,
        )],
    );
    client
        .rpc()
        .call(methods::broadcast_tx_async::RpcBroadcastTxAsyncRequest {
            signed_transaction: tx,
        })
        .await
        .unwrap();
    let page = |after: Option<Vec<u8>>| {
        let rpc = client.rpc();
        let app = app.clone();
        async move {
            let r = rpc
                .call(methods::query::RpcQueryRequest {
                    block_reference: BlockReference::Finality(Finality::None),
                    request: QueryRequest::ViewState {
                        account_id: app,
                        prefix: vec![].into(),
                        after_key: after.map(Into::into),
                        limit: std::num::NonZeroU32::new(1),
                        include_proof: false,
                    },
                })
                .await
                .unwrap();
            let QueryResponseKind::ViewState(state) = r.kind else {
                panic!("not state")
            };
            state
        }
    };
    let mut first = page(None).await;
    for _ in 0..200 {
        if first.last_key.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        first = page(None).await;
    }
    assert_eq!(first.values.len(), 1);
    assert_eq!(first.values[0].key.to_vec(), b"k");
    assert_eq!(
        first.last_key.as_ref().map(|k| k.to_vec()),
        Some(b"k".to_vec())
    );
    let second = page(Some(b"k".to_vec())).await;
    assert_eq!(second.values.len(), 1);
    assert_eq!(second.values[0].key.to_vec(), b"y");
    assert!(second.last_key.is_none());
    let err = client
        .execute(
            &signer,
            &app,
            vec![function_call(
                "fail",
                &serde_json::json!({}),
                gas,
                Balance::ZERO,
            )],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Failed(_)), "{err}");
    devnet.stop().await;
}

/// Every yoctoNEAR a signer loses is a deposit or burnt gas: charging and refunds add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balances_add_up_after_gas_charges_and_refunds() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = start(&dir.path().join("home"), 10).await;
    let client = Client::new(&devnet);
    let root = devnet.root_signer().unwrap();
    let alice = id("alice.test.near");
    let bob = id("bob.test.near");
    let alice_signer = new_signer(&alice);
    assert_success(
        &client
            .send(
                &root,
                &alice,
                create_account_actions(&alice_signer, near(10), Some(test_wasm())),
            )
            .await,
    );
    assert_success(
        &client
            .send(
                &root,
                &bob,
                create_account_actions(&new_signer(&bob), near(10), Some(test_wasm())),
            )
            .await,
    );
    // At the head: `send` returns once executed, a couple of blocks before `final` has it.
    let balance = |who: AccountId| {
        let rpc = &client.rpc;
        async move {
            let r = rpc
                .call(methods::query::RpcQueryRequest {
                    block_reference: BlockReference::Finality(Finality::None),
                    request: QueryRequest::ViewAccount { account_id: who },
                })
                .await
                .unwrap();
            let QueryResponseKind::ViewAccount(v) = r.kind else {
                panic!("not an account")
            };
            v.amount.as_yoctonear()
        }
    };
    let burnt = |o: &near_primitives::views::FinalExecutionOutcomeView| -> u128 {
        o.transaction_outcome.outcome.tokens_burnt.as_yoctonear()
            + o.receipts_outcome
                .iter()
                .map(|r| r.outcome.tokens_burnt.as_yoctonear())
                .sum::<u128>()
    };

    // A call on one's own contract, a cross-contract call with a callback, a failing call
    // with a deposit (refunded), and a plain transfer.
    let cases: Vec<(Vec<Action>, AccountId, u128)> = vec![
        (
            vec![call("set", b"abc", 30, Balance::ZERO)],
            alice.clone(),
            0,
        ),
        (
            vec![call("call_get", bob.as_bytes(), 100, Balance::ZERO)],
            alice.clone(),
            0,
        ),
        (vec![call("fail", b"", 30, near(1))], bob.clone(), 0),
        (
            vec![Action::Transfer(TransferAction { deposit: near(2) })],
            bob.clone(),
            near(2).as_yoctonear(),
        ),
    ];
    for (actions, receiver, deposit) in cases {
        let before = balance(alice.clone()).await;
        let o = client.send(&alice_signer, &receiver, actions).await;
        let after = balance(alice.clone()).await;
        assert_eq!(before - after, deposit + burnt(&o), "{o:?}");
    }
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_added_and_deleted_and_accounts_deleted() {
    use near_primitives::action::{DeleteAccountAction, DeleteKeyAction};
    let dir = tempfile::tempdir().unwrap();
    let devnet = start(&dir.path().join("home"), 10).await;
    let client = Client::new(&devnet);
    let root = devnet.root_signer().unwrap();
    let alice = id("alice.test.near");
    let alice_signer = new_signer(&alice);
    assert_success(
        &client
            .send(
                &root,
                &alice,
                create_account_actions(&alice_signer, near(5), None),
            )
            .await,
    );

    // A second key, used once, then deleted: it no longer signs.
    let second = new_signer(&alice);
    let add = Action::AddKey(Box::new(AddKeyAction {
        public_key: second.public_key(),
        access_key: AccessKey {
            nonce: 0,
            permission: AccessKeyPermission::FullAccess,
        },
    }));
    assert_success(&client.send(&alice_signer, &alice, vec![add]).await);
    assert_success(
        &client
            .send(
                &second,
                &alice,
                vec![Action::Transfer(TransferAction {
                    deposit: Balance::from_yoctonear(1),
                })],
            )
            .await,
    );
    let del = Action::DeleteKey(Box::new(DeleteKeyAction {
        public_key: second.public_key(),
    }));
    assert_success(&client.send(&alice_signer, &alice, vec![del.clone()]).await);
    let err = client
        .rpc
        .call(methods::query::RpcQueryRequest {
            block_reference: BlockReference::Finality(Finality::None),
            request: QueryRequest::ViewAccessKey {
                account_id: alice.clone(),
                public_key: second.public_key(),
            },
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.handler_error(),
            Some(RpcQueryError::UnknownAccessKey { .. })
        ),
        "{err:?}"
    );
    // Deleting it again fails in execution with nearcore's error.
    let o = client.send(&alice_signer, &alice, vec![del]).await;
    assert!(
        matches!(&o.status, FinalExecutionStatus::Failure(TxExecutionError::ActionError(e))
            if matches!(e.kind, ActionErrorKind::DeleteKeyDoesNotExist { .. })),
        "{o:?}"
    );
    // Someone else may not deploy to alice.
    let o = client
        .send(
            &root,
            &alice,
            vec![Action::DeployContract(DeployContractAction {
                code: test_wasm(),
            })],
        )
        .await;
    assert!(
        matches!(&o.status, FinalExecutionStatus::Failure(TxExecutionError::ActionError(e))
            if matches!(e.kind, ActionErrorKind::ActorNoPermission { .. })),
        "{o:?}"
    );

    // alice deletes herself; what she had goes to the root account.
    let del = Action::DeleteAccount(DeleteAccountAction {
        beneficiary_id: root.get_account_id(),
    });
    assert_success(&client.send(&alice_signer, &alice, vec![del]).await);
    let err = client
        .rpc
        .call(methods::query::RpcQueryRequest {
            block_reference: BlockReference::Finality(Finality::None),
            request: QueryRequest::ViewAccount {
                account_id: alice.clone(),
            },
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.handler_error(),
            Some(RpcQueryError::UnknownAccount { .. })
        ),
        "{err:?}"
    );
    devnet.stop().await;
}

#[tokio::test]
async fn one_keys_transactions_land_in_nonce_order_whatever_order_they_arrive_in() {
    let dir = tempfile::tempdir().unwrap();
    // Slow blocks, so all three wait in the pool for the same block.
    let devnet = start(dir.path(), 700).await;
    let client = Client::new(&devnet);
    let root = devnet.root_signer().unwrap();
    let to = id("test.near");
    let nonce = client
        .nonce(&root.get_account_id(), &root.public_key())
        .await;
    let block_hash = client.latest_hash().await;
    let transfer = || vec![Action::Transfer(TransferAction { deposit: near(1) })];
    let txs: Vec<_> = (1..=3)
        .rev()
        .map(|n| sign_tx(&root, &to, nonce + n, block_hash, transfer()))
        .collect();
    for tx in &txs {
        client
            .rpc
            .call(methods::broadcast_tx_async::RpcBroadcastTxAsyncRequest {
                signed_transaction: tx.clone(),
            })
            .await
            .unwrap();
    }
    for tx in txs {
        let outcome = client.commit(tx).await.unwrap();
        assert!(
            matches!(outcome.status, FinalExecutionStatus::SuccessValue(_)),
            "{:?}",
            outcome.status
        );
    }
    assert_eq!(
        client
            .nonce(&root.get_account_id(), &root.public_key())
            .await,
        nonce + 3
    );
    devnet.stop().await;
}
