//! The `#[near]` layer against near-sdk's mocked blockchain. The generated wasm entry points
//! (argument parsing, deposit checks) do not exist natively; the argument forms are checked by
//! deserializing the same argument structs the entry points use.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use chainsig_primitives::derivation::derive_secret_key;
use chainsig_primitives::k256::elliptic_curve::point::AffineCoordinates;
use chainsig_primitives::k256::elliptic_curve::PrimeField;
use chainsig_primitives::k256::{ProjectivePoint, Scalar};
use chainsig_primitives::{
    derive_public_key, derive_tweak, EcdsaPayload, EcdsaSignature, Payload, PublicKey, SignRequest,
    SignatureRequest, SignatureResponse,
};
use near_sdk::mock::MockAction;
use near_sdk::test_utils::{get_created_receipts, get_logs, VMContextBuilder};
use near_sdk::{testing_env, AccountId, Gas, NearToken, PromiseResult, RuntimeFeesConfig};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{account, candidate, root_key, root_secret};
use crate::{CallbackArgs, Contract, ProtocolState, TIMEOUT_MESSAGE};

const CONTRACT: &str = "signer.near";
const USER: &str = "alice.near";

fn context(predecessor: &str) -> VMContextBuilder {
    let mut ctx = VMContextBuilder::new();
    ctx.current_account_id(account(CONTRACT))
        .signer_account_id(account(predecessor))
        .predecessor_account_id(account(predecessor))
        .account_balance(NearToken::from_near(100))
        .prepaid_gas(Gas::from_tgas(100));
    ctx
}

fn as_caller(predecessor: &str) {
    testing_env!(context(predecessor).build());
}

fn with_deposit(predecessor: &str, deposit: NearToken, gas: Gas) {
    testing_env!(context(predecessor)
        .attached_deposit(deposit)
        .prepaid_gas(gas)
        .build());
}

fn as_callback(result: PromiseResult) {
    testing_env!(
        context(CONTRACT).build(),
        near_sdk::test_vm_config(),
        RuntimeFeesConfig::test(),
        Default::default(),
        vec![result],
    );
}

/// The message a call failed with (the mock wraps it in its own error text).
fn refusal(f: impl FnOnce()) -> String {
    let result = catch_unwind(AssertUnwindSafe(f));
    let payload = result.expect_err("the call was expected to fail");
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else {
        panic!("panic without a message")
    }
}

fn assert_refused(f: impl FnOnce(), expected: &str) {
    let message = refusal(f);
    assert!(
        message.contains(expected),
        "expected a refusal containing {expected:?}, got {message:?}"
    );
}

const MEMBERS: [&str; 3] = ["n0.near", "n1.near", "n2.near"];

/// A contract Running at epoch 0 with three members, threshold two, root key `root_key(1)`.
fn running() -> Contract {
    as_caller(CONTRACT);
    let mut contract = Contract::default();
    contract.init(2, MEMBERS.iter().map(|m| candidate(m)).collect(), None);
    for member in &MEMBERS {
        as_caller(member);
        contract.vote_pk(root_key(1), 0);
    }
    assert_eq!(contract.state().name(), "Running");
    contract
}

fn payload(byte: u8) -> EcdsaPayload {
    EcdsaPayload::from_bytes([byte; 32]).unwrap()
}

fn sign_request(path: &str, byte: u8) -> SignRequest {
    SignRequest {
        path: path.to_string(),
        payload: Payload::Ecdsa(payload(byte)),
        domain_id: Default::default(),
    }
}

/// Calls `sign` as `USER` with 1 yoctoNEAR and returns the request identity.
fn sign(contract: &mut Contract, path: &str, byte: u8) -> SignatureRequest {
    with_deposit(USER, NearToken::from_yoctonear(1), Gas::from_tgas(50));
    let request = sign_request(path, byte);
    contract.sign(request.clone());
    request.signature_request(USER).unwrap()
}

/// A real signature of `request` by the secret behind `root_key(root_seed)`.
fn signature_for(request: &SignatureRequest, root_seed: u64) -> SignatureResponse {
    let Payload::Ecdsa(payload) = request.payload;
    let secret = derive_secret_key(&root_secret(root_seed), &request.tweak);
    let public_key =
        PublicKey::from_affine((ProjectivePoint::GENERATOR * secret).to_affine()).unwrap();
    let k = Scalar::from(0xdead_beef_u64) + Scalar::from(root_seed);
    let big_r = (ProjectivePoint::GENERATOR * k).to_affine();
    let r = Option::<Scalar>::from(Scalar::from_repr(big_r.x())).unwrap();
    let z = payload.to_scalar();
    let s = Option::<Scalar>::from(k.invert()).unwrap() * (z + r * secret);
    SignatureResponse::Secp256k1(
        EcdsaSignature::normalize(big_r, s, &public_key, &payload).unwrap(),
    )
}

// ---- Governance plumbing ----

#[test]
fn views_before_init() {
    as_caller(USER);
    let contract = Contract::default();
    assert_eq!(
        serde_json::to_value(contract.state()).unwrap(),
        json!("NotInitialized")
    );
    assert_eq!(contract.version(), env!("CARGO_PKG_VERSION"));
    assert_refused(
        || {
            contract.public_key();
        },
        "the contract is NotInitialized",
    );
    let load = contract.system_load();
    assert_eq!(load.state, "NotInitialized");
    assert_eq!(load.pending_requests, 0);
}

#[test]
fn init_only_by_the_contract_account_and_once() {
    as_caller(USER);
    let mut contract = Contract::default();
    assert_refused(
        || contract.init(1, vec![candidate("n0.near")], None),
        "`init` may only be called by the contract account itself",
    );
    as_caller(CONTRACT);
    assert_refused(
        || contract.init(2, vec![candidate("n0.near")], None),
        "threshold 2 must be at least 1 and at most the number of members (1)",
    );
    contract.init(1, vec![candidate("n0.near")], None);
    assert_eq!(contract.state().name(), "Initializing");
    assert_refused(
        || contract.init(1, vec![candidate("n0.near")], None),
        "the contract is already initialized",
    );
}

#[test]
fn votes_through_the_contract() {
    let mut contract = running();
    assert_eq!(contract.public_key(), root_key(1));
    assert_eq!(
        serde_json::to_value(contract.public_key()).unwrap(),
        json!(root_key(1).to_string())
    );
    assert!(contract.public_key().to_string().starts_with("secp256k1:"));

    // An outsider registers and is voted in.
    as_caller("n3.near");
    contract.join(
        "https://n3:3000".into(),
        super::node_key(3),
        super::node_key(4),
    );
    as_caller("x.near");
    assert_refused(
        || {
            contract.vote_join(account("n3.near"));
        },
        "x.near is not a participant: only current participants may do this",
    );
    as_caller("n0.near");
    assert!(!contract.vote_join(account("n3.near")));
    assert_refused(
        || {
            contract.vote_join(account("n3.near"));
        },
        "n0.near has already voted on this",
    );
    as_caller("n1.near");
    assert!(contract.vote_join(account("n3.near")));
    let state = serde_json::to_value(contract.state()).unwrap();
    let resharing = &state["Resharing"];
    assert_eq!(resharing["old_epoch"], 0);
    assert_eq!(resharing["new_participants"].as_array().unwrap().len(), 4);
    assert_eq!(resharing["new_participants"][3]["account_id"], "n3.near");
    assert_eq!(resharing["new_participants"][3]["id"], 3);
    assert_eq!(resharing["public_key"], root_key(1).to_string());

    // Signing goes on during the reshare, with the same key.
    assert_eq!(contract.public_key(), root_key(1));

    as_caller("n3.near");
    assert_refused(
        || {
            contract.vote_reshared(0, 0);
        },
        "stale epoch 0",
    );
    assert!(!contract.vote_reshared(1, 0));
    for member in ["n0.near", "n1.near"] {
        as_caller(member);
        assert!(!contract.vote_reshared(1, 0));
    }
    as_caller("n2.near");
    assert!(contract.vote_reshared(1, 0));
    let load = contract.system_load();
    assert_eq!(
        (load.state.as_str(), load.epoch, load.participants),
        ("Running", Some(1), 4)
    );

    // Leaves: down to the threshold, not below.
    for leaving in ["n3.near", "n2.near"] {
        for voter in ["n0.near", "n1.near"] {
            as_caller(voter);
            contract.vote_leave(account(leaving));
        }
        let ProtocolState::Resharing(resharing) = contract.state() else {
            panic!("expected Resharing")
        };
        for member in &resharing.new_participants {
            as_caller(member.account_id.as_str());
            contract.vote_reshared(resharing.new_epoch, 0);
        }
    }
    assert_eq!(contract.state().participants().len(), 2);
    as_caller("n0.near");
    assert_refused(
        || {
            contract.vote_leave(account("n1.near"));
        },
        "below the threshold of 2",
    );
    assert_refused(
        || {
            contract.vote_pk(root_key(2), 0);
        },
        "differs from the network's root public key",
    );
}

#[test]
fn config_and_derived_keys() {
    let contract = running();
    let config = serde_json::to_value(contract.config()).unwrap();
    assert_eq!(config["max_waiting_per_request"], 16);
    assert_eq!(config["yield_timeout_blocks"], 200);
    assert_eq!(config["max_path_len"], 1024);

    let derived = contract.derived_public_key("eth/1".into(), account(USER));
    let tweak = derive_tweak(USER, "eth/1").unwrap();
    let expected = derive_public_key(root_key(1).as_affine(), &tweak).unwrap();
    assert_eq!(derived.as_affine(), &expected);
    assert_ne!(
        derived,
        contract.derived_public_key("eth/2".into(), account(USER))
    );
    assert_refused(
        || {
            contract.derived_public_key("p".repeat(1025), account(USER));
        },
        "derivation path is 1025 bytes long; at most 1024 are allowed",
    );
}

// ---- sign ----

#[test]
fn sign_records_the_request_and_logs_one_event() {
    let mut contract = running();
    let request = sign(&mut contract, "eth/1", 7);
    assert!(contract.is_pending(request));

    let logs = get_logs();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let body = logs[0].strip_prefix("EVENT_JSON:").expect("NEP-297 prefix");
    let event: Value = serde_json::from_str(body).unwrap();
    assert_eq!(event["standard"], "chainsig");
    assert_eq!(event["version"], "1.0.0");
    assert_eq!(event["event"], "sign_request");
    let data = &event["data"][0];
    assert_eq!(data["predecessor"], USER);
    assert_eq!(
        data["request"],
        json!({"path": "eth/1", "payload_v2": {"Ecdsa": hex::encode([7u8; 32])}, "domain_id": 0})
    );
    assert_eq!(data["tweak"], request.tweak.to_hex());
    assert_eq!(data["nonce"], 0);
    assert_eq!(data["deposit"], "1");
    let yield_id = bs58::decode(data["yield_id"].as_str().unwrap())
        .into_vec()
        .unwrap();
    assert_eq!(yield_id.len(), 32);
    // Read back as a node would.
    let parsed = crate::events::SignRequestEvent::parse(&logs[0])
        .unwrap()
        .unwrap();
    assert_eq!(parsed.signature_request(), request);
    assert_eq!(parsed.predecessor, account(USER));
    assert_eq!(parsed.yield_id_bytes().unwrap().to_vec(), yield_id);
    assert!(
        crate::events::SignRequestEvent::parse(r#"EVENT_JSON:{"standard":"nep171"}"#).is_none()
    );
    assert!(crate::events::SignRequestEvent::parse("hello").is_none());

    // Nothing to refund for exactly 1 yoctoNEAR.
    assert!(get_created_receipts().iter().all(|r| !r
        .actions
        .iter()
        .any(|a| matches!(a, MockAction::Transfer { .. }))));

    let load = contract.system_load();
    assert_eq!(
        (
            load.pending_requests,
            load.waiting_calls,
            load.sign_calls_total
        ),
        (1, 1, 1)
    );
}

#[test]
fn sign_refunds_the_excess_deposit() {
    let mut contract = running();
    with_deposit(USER, NearToken::from_yoctonear(1_000), Gas::from_tgas(50));
    contract.sign(sign_request("p", 1));
    let refunds: Vec<_> = get_created_receipts()
        .into_iter()
        .filter(|r| r.receiver_id == account(USER))
        .flat_map(|r| r.actions)
        .filter_map(|a| match a {
            MockAction::Transfer { deposit, .. } => Some(deposit),
            _ => None,
        })
        .collect();
    assert_eq!(refunds, vec![NearToken::from_yoctonear(999)]);
}

#[test]
fn sign_refusals() {
    as_caller(CONTRACT);
    let mut contract = Contract::default();
    with_deposit(USER, NearToken::from_yoctonear(1), Gas::from_tgas(50));
    assert_refused(
        || contract.sign(sign_request("p", 1)),
        "the network cannot sign yet: the contract is NotInitialized",
    );

    let mut contract = running();
    with_deposit(USER, NearToken::from_yoctonear(0), Gas::from_tgas(50));
    assert_refused(
        || contract.sign(sign_request("p", 1)),
        "attach a deposit of at least 1 yoctoNEAR",
    );
    with_deposit(USER, NearToken::from_yoctonear(1), Gas::from_tgas(10));
    assert_refused(
        || contract.sign(sign_request("p", 1)),
        "not enough gas: `sign` needs at least 20 TGas attached, got 10 TGas",
    );
    with_deposit(USER, NearToken::from_yoctonear(1), Gas::from_tgas(50));
    assert_refused(
        || contract.sign(sign_request(&"p".repeat(1025), 1)),
        "derivation path is 1025 bytes long; at most 1024 are allowed",
    );
    assert_eq!(contract.system_load().pending_requests, 0);
}

#[test]
fn identical_requests_share_one_entry_up_to_the_bound() {
    let mut contract = running();
    let request = sign(&mut contract, "same", 3);
    for _ in 1..16 {
        assert_eq!(sign(&mut contract, "same", 3), request);
    }
    let load = contract.system_load();
    assert_eq!((load.pending_requests, load.waiting_calls), (1, 16));
    with_deposit(USER, NearToken::from_yoctonear(1), Gas::from_tgas(50));
    assert_refused(
        || contract.sign(sign_request("same", 3)),
        "this exact request already has 16 callers waiting for it",
    );
    // Another path or payload is another request.
    sign(&mut contract, "other", 3);
    sign(&mut contract, "same", 4);
    assert_eq!(contract.system_load().pending_requests, 3);
}

#[test]
fn sign_deposit_grows_under_a_flood() {
    let config = crate::Config::default();
    let one = NearToken::from_yoctonear(1);
    assert_eq!(config.sign_deposit(0), one);
    assert_eq!(config.sign_deposit(1023), one);
    assert_eq!(config.sign_deposit(1024), NearToken::from_millinear(2));
    assert_eq!(config.sign_deposit(1025), NearToken::from_millinear(4));

    let mut contract = running();
    contract.config.free_pending_requests = 2;
    sign(&mut contract, "a", 1);
    sign(&mut contract, "b", 1);
    assert_eq!(
        contract.experimental_signature_deposit(),
        NearToken::from_millinear(2)
    );
    assert_eq!(
        contract.system_load().sign_deposit,
        NearToken::from_millinear(2)
    );
    with_deposit(USER, NearToken::from_yoctonear(1), Gas::from_tgas(50));
    assert_refused(
        || contract.sign(sign_request("c", 1)),
        "the network is under load: `sign` needs a deposit of at least 2000000000000000000000 yoctoNEAR now",
    );
    // Paying it works; the excess over the requirement is refunded.
    with_deposit(USER, NearToken::from_millinear(3), Gas::from_tgas(50));
    contract.sign(sign_request("c", 1));
    let refunds: Vec<_> = get_created_receipts()
        .into_iter()
        .flat_map(|r| r.actions)
        .filter_map(|a| match a {
            MockAction::Transfer { deposit, .. } => Some(deposit),
            _ => None,
        })
        .collect();
    assert_eq!(refunds, vec![NearToken::from_millinear(1)]);
    assert_eq!(
        contract.experimental_signature_deposit(),
        NearToken::from_millinear(4)
    );
}

/// The argument struct of `sign`'s entry point, for checking the JSON forms.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SignArgs {
    request: SignRequest,
}

#[test]
fn sign_arguments_in_both_forms_and_their_refusals() {
    let hex_payload = hex::encode([9u8; 32]);
    let current: SignArgs = serde_json::from_value(json!({"request": {
        "path": "btc", "payload_v2": {"Ecdsa": hex_payload}, "domain_id": 0}}))
    .unwrap();
    let legacy: SignArgs = serde_json::from_value(json!({"request": {
        "payload": vec![9u8; 32], "path": "btc", "key_version": 0}}))
    .unwrap();
    assert_eq!(current.request, legacy.request);

    let refused = |args: Value| {
        serde_json::from_value::<SignArgs>(args)
            .err()
            .unwrap()
            .to_string()
    };
    assert!(
        refused(json!({"request": {"path": "p", "payload": vec![1u8; 31], "key_version": 0}}))
            .contains("expected 32 bytes, got 31")
    );
    assert!(
        refused(json!({"request": {"path": "p", "payload_v2": {"Ecdsa": "abcd"}}}))
            .contains("expected 32 bytes")
    );
    assert!(
        refused(json!({"request": {"path": "p", "payload_v2": {"Ecdsa": "zz".repeat(32)}}}))
            .contains("invalid hex")
    );
    // payload ≥ n.
    assert!(
        refused(json!({"request": {"path": "p", "payload_v2": {"Ecdsa": "ff".repeat(32)}}}))
            .contains("payload must be below the secp256k1 group order")
    );
    assert!(refused(
        json!({"request": {"path": "p", "payload": vec![255u8; 32], "key_version": 0}})
    )
    .contains("payload must be below the secp256k1 group order"));
    assert!(refused(json!({"request": {"path": "p".repeat(1025), "payload_v2": {"Ecdsa": hex::encode([1u8; 32])}}}))
        .contains("derivation path is 1025 bytes long"));
}

// ---- respond ----

#[test]
fn respond_verifies_and_clears_the_request() {
    let mut contract = running();
    let request = sign(&mut contract, "eth/1", 7);
    sign(&mut contract, "eth/1", 7);
    let response = signature_for(&request, 1);

    as_caller("n2.near");
    contract.respond(request, response.into());
    assert!(!contract.is_pending(request));
    let load = contract.system_load();
    assert_eq!(
        (
            load.pending_requests,
            load.waiting_calls,
            load.responses_total
        ),
        (0, 0, 1)
    );
    assert_refused(
        || contract.respond(request, response.into()),
        "no such pending request: it was answered already, timed out, or never made",
    );
}

#[test]
fn respond_refusals_leave_the_request_pending() {
    let mut contract = running();
    let request = sign(&mut contract, "eth/1", 7);

    as_caller(USER);
    assert_refused(
        || contract.respond(request, signature_for(&request, 1).into()),
        "alice.near is not a participant: only participants may respond",
    );
    as_caller("n0.near");
    // Signed under the wrong root key.
    assert_refused(
        || contract.respond(request, signature_for(&request, 2).into()),
        "signature refused: it does not verify under the requester's derived public key",
    );
    // A valid signature of another request.
    let other = SignatureRequest {
        payload: Payload::Ecdsa(payload(8)),
        ..request
    };
    assert_refused(
        || contract.respond(request, signature_for(&other, 1).into()),
        "signature refused",
    );
    // A signature for another caller's key.
    let other_caller = sign_request("eth/1", 7)
        .signature_request("bob.near")
        .unwrap();
    assert_refused(
        || contract.respond(request, signature_for(&other_caller, 1).into()),
        "signature refused",
    );
    // A signature whose recovery id was flipped.
    let SignatureResponse::Secp256k1(good) = signature_for(&request, 1);
    let flipped =
        EcdsaSignature::from_parts(-*good.big_r(), *good.s(), 1 - good.recovery_id()).unwrap();
    assert_refused(
        || contract.respond(request, SignatureResponse::Secp256k1(flipped).into()),
        "signature refused",
    );
    assert!(contract.is_pending(request));
    assert_eq!(contract.system_load().pending_requests, 1);

    contract.respond(request, signature_for(&request, 1).into());
    assert!(!contract.is_pending(request));
}

/// The argument struct of `respond`'s entry point.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RespondArgs {
    request: SignatureRequest,
    response: crate::ResponseArg,
}

#[test]
fn respond_arguments_json() {
    as_caller(USER);
    let request = sign_request("eth/1", 7).signature_request(USER).unwrap();
    let response = signature_for(&request, 1);
    let args = json!({"request": request, "response": response});
    assert_eq!(args["request"]["tweak"], request.tweak.to_hex());
    assert_eq!(args["request"]["payload"]["Ecdsa"], hex::encode([7u8; 32]));
    assert_eq!(args["request"]["domain_id"], 0);
    assert_eq!(args["response"]["scheme"], "Secp256k1");
    let parsed: RespondArgs = serde_json::from_value(args.clone()).unwrap();
    assert_eq!(parsed.request, request);
    assert_eq!(SignatureResponse::from(parsed.response), response);
    // The same JSON as the primitives' type, both ways.
    assert_eq!(
        serde_json::to_value(parsed.response).unwrap(),
        serde_json::to_value(response).unwrap()
    );
    let mut other_scheme = args.clone();
    other_scheme["response"]["scheme"] = json!("Ed25519");
    assert!(serde_json::from_value::<RespondArgs>(other_scheme).is_err());

    // A malformed signature never reaches the contract's logic.
    let mut high_s = args.clone();
    high_s["response"]["s"]["scalar"] = json!(hex::encode_upper(
        (-*match response {
            SignatureResponse::Secp256k1(s) => s,
        }
        .s())
        .to_bytes()
    ));
    let err = serde_json::from_value::<RespondArgs>(high_s)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not normalized"), "{err}");
    let mut bad_id = args.clone();
    bad_id["response"]["recovery_id"] = json!(2);
    let err = serde_json::from_value::<RespondArgs>(bad_id)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("recovery id must be 0 or 1"), "{err}");
    let mut bad_point = args;
    bad_point["response"]["big_r"]["affine_point"] = json!(format!("05{}", "11".repeat(32)));
    assert!(serde_json::from_value::<RespondArgs>(bad_point).is_err());
}

// ---- the callback ----

fn callback_args(request: SignatureRequest, nonce: u64) -> (SignatureRequest, u64) {
    // The arguments `sign` gives the yield round-trip through JSON.
    let json = serde_json::to_vec(&CallbackArgs { request, nonce }).unwrap();
    let back: CallbackArgs = serde_json::from_slice(&json).unwrap();
    (back.request, back.nonce)
}

#[test]
fn callback_returns_the_response() {
    let mut contract = running();
    let request = sign(&mut contract, "eth/1", 7);
    let response = signature_for(&request, 1);
    as_caller("n1.near");
    contract.respond(request, response.into());

    as_callback(PromiseResult::Successful(
        serde_json::to_vec(&response).unwrap(),
    ));
    let (request, nonce) = callback_args(request, 0);
    contract.on_signature(request, nonce);
    assert!(get_created_receipts().is_empty());
    assert_eq!(contract.system_load().timeouts_total, 0);
}

#[test]
fn callback_on_timeout_forgets_the_call_and_fails() {
    let mut contract = running();
    let request = sign(&mut contract, "eth/1", 7);
    sign(&mut contract, "eth/1", 7);
    sign(&mut contract, "eth/2", 7);

    as_callback(PromiseResult::Failed);
    contract.on_signature(request, 0);
    let receipts = get_created_receipts();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].receiver_id, account(CONTRACT));
    assert!(matches!(
        &receipts[0].actions[..],
        [MockAction::FunctionCallWeight { method_name, .. }] if method_name == b"fail_on_timeout"
    ));
    // The other caller of the same request still waits.
    assert!(contract.is_pending(request));
    let load = contract.system_load();
    assert_eq!(
        (
            load.pending_requests,
            load.waiting_calls,
            load.timeouts_total
        ),
        (2, 2, 1)
    );

    as_callback(PromiseResult::Failed);
    contract.on_signature(request, 1);
    assert!(!contract.is_pending(request));
    let load = contract.system_load();
    assert_eq!(
        (
            load.pending_requests,
            load.waiting_calls,
            load.timeouts_total
        ),
        (1, 1, 2)
    );

    // A timeout that fires after a response removed the entry changes nothing else.
    as_callback(PromiseResult::Failed);
    contract.on_signature(request, 1);
    assert_eq!(contract.system_load().pending_requests, 1);

    as_caller(CONTRACT);
    assert_refused(Contract::fail_on_timeout, TIMEOUT_MESSAGE);
}

#[test]
fn callback_only_from_the_contract() {
    let mut contract = running();
    let request = sign(&mut contract, "eth/1", 7);
    as_caller(USER);
    assert_refused(
        || contract.on_signature(request, 0),
        "`on_signature` may only be called by the contract account itself",
    );
    assert_refused(
        Contract::fail_on_timeout,
        "`fail_on_timeout` may only be called by the contract account itself",
    );
    assert!(contract.is_pending(request));
}

#[test]
fn state_view_is_the_state_machine() {
    let contract = running();
    assert!(matches!(contract.state(), ProtocolState::Running(_)));
    let _: AccountId = account(USER);
}

#[test]
fn derive_key_through_ecrecover_matches_the_plain_computation() {
    as_caller(USER);
    for i in 0..20u64 {
        let tweak = derive_tweak(USER, &format!("path/{i}")).unwrap();
        let root = root_key(i + 1);
        let expected = derive_public_key(root.as_affine(), &tweak).unwrap();
        assert_eq!(
            crate::derive_key(&root, &tweak).unwrap().as_affine(),
            &expected
        );
    }
    // Tweak zero: the recovery has no answer, the fallback does.
    let zero = chainsig_primitives::Tweak::from_bytes([0; 32]).unwrap();
    assert_eq!(crate::derive_key(&root_key(1), &zero).unwrap(), root_key(1));
}

// ---- nothing leaks: random sign / respond / timeout sequences ----

#[derive(Debug, Clone)]
enum PendingOp {
    /// `sign` by `USER` for one of a few (path, payload) pairs.
    Sign(usize),
    /// A participant answers one of the requests signed so far.
    Respond(usize),
    /// The yield of one of the `sign` calls made so far times out.
    Timeout(usize),
}

fn pending_op() -> impl proptest::strategy::Strategy<Value = PendingOp> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (0usize..4).prop_map(PendingOp::Sign),
        2 => (0usize..64).prop_map(PendingOp::Respond),
        3 => (0usize..64).prop_map(PendingOp::Timeout),
    ]
}

fn raw_entry_exists(contract: &mut Contract, request: &SignatureRequest) -> bool {
    contract.pending.flush();
    let mut key = b"p".to_vec();
    key.extend(near_sdk::borsh::to_vec(&crate::RequestKey::from(request)).unwrap());
    near_sdk::env::storage_has_key(&key)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    #[test]
    fn pending_requests_never_leak(ops in proptest::collection::vec(pending_op(), 1..40)) {
        let mut contract = running();
        // Model: the nonces still waiting, per request; and every call made, in order.
        type Key = ([u8; 32], [u8; 32]);
        let mut waiting: BTreeMap<Key, (SignatureRequest, Vec<u64>)> = BTreeMap::new();
        let mut calls: Vec<(SignatureRequest, u64)> = Vec::new();
        let mut signed: Vec<SignatureRequest> = Vec::new();
        let mut next_nonce = 0u64;
        let key = |r: &SignatureRequest| -> Key { (r.tweak.to_bytes(), *r.payload.as_bytes()) };
        for op in &ops {
            let contract = &mut contract;
            match *op {
            PendingOp::Sign(i) => {
                let request = sign(contract, &format!("path/{}", i % 2), 1 + (i / 2) as u8);
                waiting.entry(key(&request)).or_insert((request, Vec::new())).1.push(next_nonce);
                calls.push((request, next_nonce));
                if !signed.contains(&request) {
                    signed.push(request);
                }
                next_nonce += 1;
            }
            PendingOp::Respond(i) if !signed.is_empty() => {
                let request = signed[i % signed.len()];
                as_caller("n1.near");
                let response = signature_for(&request, 1).into();
                if waiting.remove(&key(&request)).is_some() {
                    contract.respond(request, response);
                } else {
                    assert_refused(|| contract.respond(request, response), "no such pending request");
                }
            }
            PendingOp::Timeout(i) if !calls.is_empty() => {
                let (request, nonce) = calls[i % calls.len()];
                as_callback(PromiseResult::Failed);
                contract.on_signature(request, nonce);
                if let Some((_, nonces)) = waiting.get_mut(&key(&request)) {
                    nonces.retain(|n| *n != nonce);
                    if nonces.is_empty() {
                        waiting.remove(&key(&request));
                    }
                }
            }
            _ => {}
            }
            let load = contract.system_load();
            proptest::prop_assert_eq!(load.pending_requests, waiting.len() as u64);
            proptest::prop_assert_eq!(
                load.waiting_calls,
                waiting.values().map(|(_, n)| n.len() as u64).sum::<u64>()
            );
            for request in &signed {
                let expected = waiting.contains_key(&key(request));
                proptest::prop_assert_eq!(contract.is_pending(*request), expected);
                proptest::prop_assert_eq!(raw_entry_exists(contract, request), expected);
            }
        }
        // Every call still waiting times out: nothing is left, in the counters or in storage.
        for (request, nonce) in calls.clone() {
            as_callback(PromiseResult::Failed);
            contract.on_signature(request, nonce);
        }
        let load = contract.system_load();
        proptest::prop_assert_eq!((load.pending_requests, load.waiting_calls), (0, 0));
        for request in &signed {
            proptest::prop_assert!(!raw_entry_exists(&mut contract, request));
        }
    }
}

#[test]
fn init_takes_a_partial_config_and_refuses_a_bad_one() {
    as_caller(CONTRACT);
    let mut contract = Contract::default();
    let config: crate::Config =
        serde_json::from_value(json!({"key_event_attempt_blocks": 7})).unwrap();
    assert_eq!(
        config.key_event_max_attempts,
        crate::Config::default().key_event_max_attempts
    );
    assert!(
        serde_json::from_value::<crate::Config>(json!({"no_such_field": 1})).is_err(),
        "unknown fields are refused"
    );
    let bad: crate::Config =
        serde_json::from_value(json!({"key_event_attempt_blocks": 0})).unwrap();
    assert_refused(
        || contract.init(1, vec![candidate("n0.near")], Some(bad)),
        "bad config: key_event_attempt_blocks must be at least 1",
    );
    contract.init(1, vec![candidate("n0.near")], Some(config));
    assert_eq!(contract.config().key_event_attempt_blocks, 7);
}

#[test]
fn the_state_view_moves_with_the_block_height() {
    as_caller(CONTRACT);
    let mut contract = Contract::default();
    let config: crate::Config =
        serde_json::from_value(json!({"key_event_attempt_blocks": 5, "key_event_max_attempts": 2}))
            .unwrap();
    contract.init(
        2,
        MEMBERS.iter().map(|m| candidate(m)).collect(),
        Some(config),
    );
    let at = |height: u64| {
        testing_env!(context(USER).block_height(height).build());
    };
    // The mock's first block is 0.
    at(4);
    let state = serde_json::to_value(contract.state()).unwrap();
    assert_eq!(state["Initializing"]["key_event"]["attempt"]["id"], 0);
    at(5);
    let state = serde_json::to_value(contract.state()).unwrap();
    let attempt = &state["Initializing"]["key_event"]["attempt"];
    assert_eq!(
        (attempt["id"].clone(), attempt["leader"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(attempt["deadline"], 10);

    // A vote for the attempt that is over is refused with both numbers.
    testing_env!(context("n0.near").block_height(5).build());
    assert_refused(
        || {
            contract.vote_pk(root_key(1), 0);
        },
        "attempt 0 is not the current one: the key event is in attempt 1",
    );
    for member in &MEMBERS {
        testing_env!(context(member).block_height(6).build());
        contract.vote_pk(root_key(1), 1);
    }
    assert_eq!(contract.state().name(), "Running");

    // A reshare out of attempts shows as cancelled in the view, before anyone calls.
    for voter in ["n0.near", "n1.near"] {
        testing_env!(context(voter).block_height(20).build());
        contract.vote_leave(account("n2.near"));
    }
    at(29);
    assert_eq!(contract.state().name(), "Resharing");
    at(30);
    assert_eq!(contract.state().name(), "Running");
    assert_eq!(contract.state().participants().len(), 3);
    assert_eq!(contract.system_load().participants, 3);
}

#[test]
fn signing_goes_on_while_resharing() {
    let mut contract = running();
    as_caller("n3.near");
    contract.join(
        "https://n3:3000".into(),
        super::node_key(3),
        super::node_key(4),
    );
    for voter in ["n0.near", "n1.near"] {
        as_caller(voter);
        contract.vote_join(account("n3.near"));
    }
    assert_eq!(contract.state().name(), "Resharing");
    let first = sign(&mut contract, "eth/1", 1);
    let second = sign(&mut contract, "eth/2", 1);
    // Members of the old set and of the new set may answer; outsiders may not.
    as_caller("n0.near");
    contract.respond(first, signature_for(&first, 1).into());
    as_caller("n3.near");
    contract.respond(second, signature_for(&second, 1).into());
    as_caller("x.near");
    let third = SignatureRequest {
        payload: Payload::Ecdsa(payload(2)),
        ..first
    };
    assert_refused(
        || contract.respond(third, signature_for(&third, 1).into()),
        "x.near is not a participant",
    );
    assert_eq!(contract.system_load().responses_total, 2);
}
