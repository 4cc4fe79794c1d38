//! The real signer contract wasm on the devnet: deploy, `init`, `vote_pk`, then `sign` →
//! a test participant (whose root secret the test knows) `respond`s → the `sign` transaction
//! returns the signature; and a `sign` nobody answers fails after the yield timeout with the
//! contract's error.
//!
//! The wasm comes from [`chainsig_devnet::signer_wasm`] (`CHAINSIG_CONTRACT_WASM`, the
//! workspace's build, or a fresh one).

mod common;

use std::time::Duration;

use chainsig_primitives::derivation::derive_secret_key;
use chainsig_primitives::k256::elliptic_curve::ops::Reduce;
use chainsig_primitives::k256::elliptic_curve::point::AffineCoordinates;
use chainsig_primitives::k256::elliptic_curve::Field;
use chainsig_primitives::k256::{ProjectivePoint, Scalar, U256};
use chainsig_primitives::{
    derive_tweak, DomainId, EcdsaPayload, EcdsaSignature, Payload, PublicKey, SignRequest,
    SignatureResponse,
};
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
use rand_core::OsRng;
use serde_json::json;

fn account(signer: &near_crypto::Signer, amount: Balance, code: Option<Vec<u8>>) -> Vec<Action> {
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

fn ok(o: &FinalExecutionOutcomeView) -> Vec<u8> {
    match &o.status {
        FinalExecutionStatus::SuccessValue(v) => v.clone(),
        other => panic!("expected success, got {other:?}\n{o:#?}"),
    }
}

fn json_call(method: &str, args: serde_json::Value, tgas: u64, deposit: u128) -> Action {
    call(
        method,
        args.to_string().as_bytes(),
        tgas,
        Balance::from_yoctonear(deposit),
    )
}

async fn final_status(
    client: &Client,
    h: CryptoHash,
    who: &AccountId,
) -> FinalExecutionOutcomeView {
    let r = client
        .rpc
        .call(methods::tx::RpcTransactionStatusRequest {
            transaction_info: TransactionInfo::TransactionId {
                tx_hash: h,
                sender_account_id: who.clone(),
            },
            wait_until: TxExecutionStatus::Final,
        })
        .await
        .expect("tx status");
    r.final_execution_outcome.expect("outcome").into_outcome()
}

/// What a participant does: sign `payload` with the key derived for (predecessor, path).
fn participant_signature(
    root_secret: &Scalar,
    predecessor: &str,
    path: &str,
    payload: &EcdsaPayload,
) -> SignatureResponse {
    let tweak = derive_tweak(predecessor, path).unwrap();
    let d = derive_secret_key(root_secret, &tweak);
    let derived = PublicKey::from_affine((ProjectivePoint::GENERATOR * d).to_affine()).unwrap();
    let k = Scalar::random(&mut OsRng);
    let big_r = (ProjectivePoint::GENERATOR * k).to_affine();
    let r = <Scalar as Reduce<U256>>::reduce_bytes(&big_r.x());
    let s = k.invert().unwrap() * (payload.to_scalar() + r * d);
    SignatureResponse::Secp256k1(EcdsaSignature::normalize(big_r, s, &derived, payload).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_respond_and_timeout_with_the_real_contract() {
    let wasm = chainsig_devnet::signer_wasm::load().expect("the contract wasm");
    let dir = tempfile::tempdir().unwrap();
    let devnet = start(&dir.path().join("home"), 10).await;
    let client = Client::new(&devnet);
    let root = devnet.root_signer().unwrap();

    let contract: AccountId = "signer.test.near".parse().unwrap();
    let node: AccountId = "node1.test.near".parse().unwrap();
    let user: AccountId = "alice.test.near".parse().unwrap();
    let contract_key = new_signer(&contract);
    let node_key = new_signer(&node);
    let user_key = new_signer(&user);
    ok(&client
        .send(
            &root,
            &contract,
            account(&contract_key, near(50), Some(wasm)),
        )
        .await);
    ok(&client
        .send(&root, &node, account(&node_key, near(10), None))
        .await);
    ok(&client
        .send(&root, &user, account(&user_key, near(10), None))
        .await);

    // Governance: one participant, threshold 1, whose root key the test holds.
    let init = json!({
        "threshold": 1,
        "candidates": [{
            "account_id": node,
            "url": "https://node1.localhost:3000",
            "tls_public_key": node_key.public_key().to_string(),
            "sign_public_key": node_key.public_key().to_string(),
        }],
        "config": {"key_event_attempt_blocks": 100_000},
    });
    ok(&client
        .send(
            &contract_key,
            &contract,
            vec![json_call("init", init, 100, 0)],
        )
        .await);
    let root_secret = Scalar::random(&mut OsRng);
    let root_pk =
        PublicKey::from_affine((ProjectivePoint::GENERATOR * root_secret).to_affine()).unwrap();
    let vote = json!({ "public_key": root_pk.to_near_string(), "attempt": 0 });
    ok(&client
        .send(
            &node_key,
            &contract,
            vec![json_call("vote_pk", vote, 100, 0)],
        )
        .await);
    let pk = client.view(&contract, "public_key", b"{}").await;
    assert_eq!(
        serde_json::from_slice::<String>(&pk).unwrap(),
        root_pk.to_near_string()
    );

    // sign → respond → the sign transaction returns the signature.
    let payload = EcdsaPayload::from_bytes([7u8; 32]).unwrap();
    let path = "ethereum-1";
    let request = SignRequest {
        path: path.to_string(),
        payload: Payload::Ecdsa(payload),
        domain_id: DomainId(0),
    };
    let sign_args = json!({ "request": request });
    let tx = client
        .sign(
            &user_key,
            &contract,
            vec![json_call("sign", sign_args, 50, 1)],
        )
        .await;
    let sign_hash = client
        .rpc
        .call(methods::broadcast_tx_async::RpcBroadcastTxAsyncRequest {
            signed_transaction: tx,
        })
        .await
        .unwrap();
    let signature_request = request.signature_request(user.as_str()).unwrap();
    let pending_args = json!({ "request": signature_request }).to_string();
    let mut tries = 0;
    while client
        .view(&contract, "is_pending", pending_args.as_bytes())
        .await
        != b"true"
    {
        tries += 1;
        assert!(tries < 300, "the sign request never became pending");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let response = participant_signature(&root_secret, user.as_str(), path, &payload);
    let respond = json!({ "request": signature_request, "response": response });
    ok(&client
        .send(
            &node_key,
            &contract,
            vec![json_call("respond", respond, 100, 0)],
        )
        .await);
    let signed = final_status(&client, sign_hash, &user).await;
    let returned: SignatureResponse = serde_json::from_slice(&ok(&signed)).unwrap();
    assert_eq!(returned, response);

    // A request nobody answers fails after the yield timeout with the contract's message.
    let other = SignRequest {
        path: path.to_string(),
        payload: Payload::Ecdsa(EcdsaPayload::from_bytes([9u8; 32]).unwrap()),
        domain_id: DomainId(0),
    };
    let start_height = devnet.height();
    let o = client
        .send(
            &user_key,
            &contract,
            vec![json_call("sign", json!({ "request": other }), 50, 1)],
        )
        .await;
    assert!(devnet.height() >= start_height + 200);
    match &o.status {
        FinalExecutionStatus::Failure(TxExecutionError::ActionError(e)) => match &e.kind {
            ActionErrorKind::FunctionCallError(FunctionCallError::ExecutionError(m)) => {
                assert!(m.contains("signature request timed out"), "{m}")
            }
            other => panic!("unexpected {other:?}"),
        },
        other => panic!("unexpected {other:?}\n{o:#?}"),
    }
    devnet.stop().await;
}
