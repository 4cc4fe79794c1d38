//! End to end: the real contract wasm on the devnet, driven over NEAR JSON-RPC as nodes and
//! clients drive it. Covers what near-sdk's mock cannot: the generated entry points (argument
//! JSON, refusals), sign → respond → callback through yield/resume, identical requests sharing
//! one response, the timeout path, and the gas each method burns (printed; run with
//! `--nocapture` to see the table).
//!
//! The wasm comes from [`chainsig_devnet::signer_wasm`] (`CHAINSIG_CONTRACT_WASM`, the
//! workspace's build, or a fresh one).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use chainsig_contract::events::SignRequestEvent;
use chainsig_devnet::{Devnet, DevnetConfig};
use chainsig_primitives::derivation::derive_secret_key;
use chainsig_primitives::k256::elliptic_curve::PrimeField;
use chainsig_primitives::k256::{ProjectivePoint, Scalar};
use chainsig_primitives::{
    EcdsaPayload, EcdsaSignature, Payload, PublicKey, SignatureRequest, SignatureResponse, Tweak,
};
use near_crypto::{InMemorySigner, KeyType, Signer};
use near_primitives::account::{AccessKey, AccessKeyPermission};
use near_primitives::action::{
    Action, AddKeyAction, CreateAccountAction, DeployContractAction, FunctionCallAction,
    TransferAction,
};
use near_primitives::hash::CryptoHash;
use near_primitives::transaction::{SignedTransaction, Transaction, TransactionV0};
use near_primitives::types::{AccountId, Balance, Gas};
use near_sdk::base64::engine::general_purpose::STANDARD as BASE64;
use near_sdk::base64::Engine;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The size budget scripts/build-contract.sh enforces.
const MAX_WASM_BYTES: usize = 400_000;

fn near(n: u128) -> Balance {
    Balance::from_yoctonear(n * 10u128.pow(24))
}

fn yocto(n: u128) -> Balance {
    Balance::from_yoctonear(n)
}

fn call(method: &str, args: Value, tgas: u64, deposit: Balance) -> Action {
    Action::FunctionCall(Box::new(FunctionCallAction {
        method_name: method.to_string(),
        args: serde_json::to_vec(&args).unwrap(),
        gas: Gas::from_gas(tgas * 1_000_000_000_000),
        deposit,
    }))
}

/// A JSON-RPC client over plain HTTP/1.1, enough for a test.
struct Rpc {
    addr: SocketAddr,
}

impl Rpc {
    async fn request(&self, method: &str, params: Value) -> Result<Value, Value> {
        let body =
            json!({"jsonrpc": "2.0", "id": "t", "method": method, "params": params}).to_string();
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let response = String::from_utf8(response).unwrap();
        let (_, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        let mut reply: Value = serde_json::from_str(body).expect("a JSON-RPC reply");
        match reply.get("error") {
            Some(error) => Err(error.clone()),
            None => Ok(reply["result"].take()),
        }
    }

    /// At the head, as near-api-js reads it: the devnet's `final` lags by two blocks, as on
    /// NEAR, and would not show the nonce of a transaction `commit` just returned.
    async fn nonce(&self, signer: &Signer) -> u64 {
        let r = self
            .request(
                "query",
                json!({"request_type": "view_access_key", "finality": "optimistic",
                       "account_id": signer.get_account_id(), "public_key": signer.public_key()}),
            )
            .await
            .expect("access key");
        r["nonce"].as_u64().unwrap()
    }

    async fn block_hash(&self) -> CryptoHash {
        let r = self
            .request("block", json!({"finality": "final"}))
            .await
            .unwrap();
        r["header"]["hash"].as_str().unwrap().parse().unwrap()
    }

    async fn tx(
        &self,
        signer: &Signer,
        receiver: &AccountId,
        actions: Vec<Action>,
    ) -> SignedTransaction {
        let tx = Transaction::V0(TransactionV0 {
            signer_id: signer.get_account_id(),
            public_key: signer.public_key(),
            nonce: self.nonce(signer).await + 1,
            receiver_id: receiver.clone(),
            block_hash: self.block_hash().await,
            actions,
        });
        let (hash, _) = tx.get_hash_and_size();
        SignedTransaction::new(signer.sign(hash.as_ref()), tx)
    }

    async fn commit(&self, tx: &SignedTransaction) -> Outcome {
        let encoded = BASE64.encode(near_sdk::borsh::to_vec(tx).unwrap());
        let outcome = self
            .request("broadcast_tx_commit", json!([encoded]))
            .await
            .unwrap_or_else(|e| panic!("transaction refused: {e}"));
        Outcome(outcome)
    }

    async fn send(&self, signer: &Signer, receiver: &AccountId, actions: Vec<Action>) -> Outcome {
        let tx = self.tx(signer, receiver, actions).await;
        self.commit(&tx).await
    }

    /// The outcome so far, with receipts (so method names are known).
    async fn status(&self, tx: &SignedTransaction) -> Option<Outcome> {
        self.status_at(tx, "INCLUDED_FINAL").await
    }

    async fn status_at(&self, tx: &SignedTransaction, wait_until: &str) -> Option<Outcome> {
        self.request(
            "EXPERIMENTAL_tx_status",
            json!({"tx_hash": tx.get_hash(), "sender_account_id": tx.transaction.signer_id(),
                   "wait_until": wait_until}),
        )
        .await
        .ok()
        .map(Outcome)
    }

    /// At the head too, where the effects of a transaction `commit` returned already are.
    async fn view(&self, contract: &AccountId, method: &str, args: Value) -> Result<Value, String> {
        let r = self
            .request(
                "query",
                json!({"request_type": "call_function", "finality": "optimistic",
                       "account_id": contract, "method_name": method,
                       "args_base64": BASE64.encode(args.to_string())}),
            )
            .await
            .map_err(|e| e.to_string())?;
        if let Some(error) = r.get("error") {
            return Err(error.to_string());
        }
        let bytes: Vec<u8> = serde_json::from_value(r["result"].clone()).unwrap();
        Ok(serde_json::from_slice(&bytes).unwrap())
    }
}

/// A transaction's outcome as JSON-RPC returns it.
#[derive(Debug, Clone)]
struct Outcome(Value);

impl Outcome {
    fn success_value(&self) -> Option<Value> {
        let value = self.0["status"].get("SuccessValue")?.as_str()?;
        let bytes = BASE64.decode(value).unwrap();
        if bytes.is_empty() {
            return Some(Value::Null);
        }
        Some(serde_json::from_slice(&bytes).unwrap())
    }

    #[track_caller]
    fn expect_success(&self) -> Value {
        self.success_value()
            .unwrap_or_else(|| panic!("expected success, got {:#}", self.0["status"]))
    }

    #[track_caller]
    fn expect_failure(&self, message: &str) {
        let status = self.0["status"].to_string();
        assert!(
            self.0["status"].get("Failure").is_some() && status.contains(message),
            "expected a failure containing {message:?}, got {status}"
        );
    }

    fn logs(&self) -> Vec<String> {
        let mut logs = Vec::new();
        for r in self.0["receipts_outcome"].as_array().into_iter().flatten() {
            for l in r["outcome"]["logs"].as_array().into_iter().flatten() {
                logs.push(l.as_str().unwrap().to_string());
            }
        }
        logs
    }

    /// Gas burnt per contract method, from the receipts' function calls.
    fn gas_by_method(&self) -> Vec<(String, u64)> {
        let mut methods = BTreeMap::new();
        for r in self.0["receipts"].as_array().into_iter().flatten() {
            let actions = &r["receipt"]["Action"]["actions"];
            for a in actions.as_array().into_iter().flatten() {
                if let Some(m) = a["FunctionCall"]["method_name"].as_str() {
                    methods.insert(r["receipt_id"].as_str().unwrap().to_string(), m.to_string());
                }
            }
        }
        let mut out = Vec::new();
        for r in self.0["receipts_outcome"].as_array().into_iter().flatten() {
            if let Some(m) = methods.get(r["id"].as_str().unwrap()) {
                out.push((m.clone(), r["outcome"]["gas_burnt"].as_u64().unwrap()));
            }
        }
        out
    }
}

/// Test accounts: a signer whose key is added when the account is created.
fn signer(account: &AccountId) -> Signer {
    InMemorySigner::from_seed(account.clone(), KeyType::ED25519, account.as_str())
}

fn root_secret() -> Scalar {
    Scalar::from(0x5eed_u64) * Scalar::from(0x1234_5678_9abc_def1_u64)
}

fn root_public_key(secret: &Scalar) -> PublicKey {
    PublicKey::from_affine((ProjectivePoint::GENERATOR * secret).to_affine()).unwrap()
}

/// A valid signature of `payload` with the key derived from `root` and `tweak`.
fn make_signature(root: &Scalar, tweak: &Tweak, payload: &EcdsaPayload) -> SignatureResponse {
    let secret = derive_secret_key(root, tweak);
    let k = Scalar::from(0xc0ffee_u64) + Scalar::from(u64::from(payload.as_bytes()[0]));
    let big_r = (ProjectivePoint::GENERATOR * k).to_affine();
    use chainsig_primitives::k256::elliptic_curve::point::AffineCoordinates;
    let r = Option::<Scalar>::from(Scalar::from_repr(big_r.x())).unwrap();
    let s = Option::<Scalar>::from(k.invert()).unwrap() * (payload.to_scalar() + r * secret);
    let signature =
        EcdsaSignature::normalize(big_r, s, &root_public_key(&secret), payload).unwrap();
    SignatureResponse::Secp256k1(signature)
}

struct World {
    rpc: Rpc,
    contract: AccountId,
    gas: BTreeMap<String, Vec<u64>>,
}

impl World {
    /// Records the gas each contract method of a finished transaction burnt.
    async fn record(&mut self, tx: &SignedTransaction) {
        let outcome = self
            .rpc
            .status_at(tx, "FINAL")
            .await
            .expect("final outcome");
        for (method, gas) in outcome.gas_by_method() {
            self.gas.entry(method).or_default().push(gas);
        }
    }

    /// Calls a contract method and records the gas.
    async fn call(
        &mut self,
        who: &Signer,
        method: &str,
        args: Value,
        tgas: u64,
        deposit: Balance,
    ) -> Outcome {
        let contract = self.contract.clone();
        let tx = self
            .rpc
            .tx(who, &contract, vec![call(method, args, tgas, deposit)])
            .await;
        let outcome = self.rpc.commit(&tx).await;
        self.record(&tx).await;
        outcome
    }

    /// Sends a `sign` transaction without waiting for it; returns it with its
    /// `sign_request` event once the contract has logged it.
    async fn start_sign(
        &self,
        who: &Signer,
        request: Value,
    ) -> (tokio::task::JoinHandle<Outcome>, SignedTransaction, Value) {
        let tx = self
            .rpc
            .tx(
                who,
                &self.contract,
                vec![call("sign", json!({"request": request}), 50, yocto(1))],
            )
            .await;
        let rpc = Rpc {
            addr: self.rpc.addr,
        };
        let tx2 = tx.clone();
        let handle = tokio::spawn(async move { rpc.commit(&tx2).await });
        // Up to 30 s: generous for a loaded CI machine.
        for _ in 0..3000 {
            if let Some(outcome) = self.rpc.status(&tx).await {
                if let Some(line) = outcome.logs().iter().find(|l| l.starts_with("EVENT_JSON:")) {
                    let event: Value = serde_json::from_str(&line["EVENT_JSON:".len()..]).unwrap();
                    return (handle, tx, event);
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the sign request never showed up");
    }
}

/// The `respond` request named by a `sign_request` event.
fn request_of(event: &Value) -> (SignatureRequest, EcdsaPayload, Tweak) {
    let line = format!("EVENT_JSON:{event}");
    let event = SignRequestEvent::parse(&line)
        .expect("a sign_request event")
        .unwrap();
    let Payload::Ecdsa(payload) = event.request.payload;
    (event.signature_request(), payload, event.tweak)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_the_devnet() {
    let wasm = chainsig_devnet::signer_wasm::load().expect("the contract wasm");
    assert!(
        wasm.len() < MAX_WASM_BYTES,
        "the contract wasm is {} bytes, over the {MAX_WASM_BYTES} limit",
        wasm.len()
    );
    eprintln!("contract wasm: {} bytes", wasm.len());

    let dir = tempfile::tempdir().unwrap();
    let mut config = DevnetConfig::new(dir.path().join("home"));
    config.rpc_addr = "127.0.0.1:0".parse().unwrap();
    config.block_time = Duration::from_millis(10);
    config.tx_timeout = Duration::from_secs(60);
    let devnet = Devnet::start(config).await.expect("devnet starts");
    let rpc = Rpc {
        addr: devnet.rpc_addr(),
    };
    let root = devnet.root_signer().unwrap();
    let sub =
        |name: &str| -> AccountId { format!("{name}.{}", devnet.root_account()).parse().unwrap() };

    let contract: AccountId = sub("signer");
    let nodes: Vec<AccountId> = (0..4).map(|i| sub(&format!("n{i}"))).collect();
    let alice = sub("alice");
    let bob = sub("bob");
    for (account, code) in std::iter::once((&contract, Some(wasm)))
        .chain(nodes.iter().chain([&alice, &bob]).map(|a| (a, None)))
    {
        let mut actions = vec![
            Action::CreateAccount(CreateAccountAction {}),
            Action::Transfer(TransferAction { deposit: near(20) }),
            Action::AddKey(Box::new(AddKeyAction {
                public_key: signer(account).public_key(),
                access_key: AccessKey {
                    nonce: 0,
                    permission: AccessKeyPermission::FullAccess,
                },
            })),
        ];
        if let Some(code) = code {
            actions.push(Action::DeployContract(DeployContractAction { code }));
        }
        rpc.send(&root, account, actions).await.expect_success();
    }
    let mut world = World {
        rpc,
        contract: contract.clone(),
        gas: BTreeMap::new(),
    };
    let contract_signer = signer(&contract);
    let node_signers: Vec<Signer> = nodes.iter().map(signer).collect();
    let (alice_s, bob_s) = (signer(&alice), signer(&bob));

    // ---- Governance ----
    assert_eq!(
        world.rpc.view(&contract, "state", json!({})).await.unwrap(),
        json!("NotInitialized")
    );
    assert_eq!(
        world
            .rpc
            .view(&contract, "version", json!({}))
            .await
            .unwrap(),
        json!(env!("CARGO_PKG_VERSION"))
    );
    let candidate = |i: usize| {
        let s = &node_signers[i];
        json!({"account_id": nodes[i], "url": format!("https://n{i}.local:3000"),
               "tls_public_key": s.public_key(), "sign_public_key": s.public_key()})
    };
    let candidates: Vec<Value> = (0..3).map(candidate).collect();
    world
        .call(
            &alice_s,
            "init",
            json!({"threshold": 2, "candidates": candidates}),
            30,
            yocto(0),
        )
        .await
        .expect_failure("`init` may only be called by the contract account itself");
    // Attempts long enough that this test's votes all fall in the first one.
    world
        .call(
            &contract_signer,
            "init",
            json!({"threshold": 2, "candidates": candidates,
                   "config": {"key_event_attempt_blocks": 100_000}}),
            30,
            yocto(0),
        )
        .await
        .expect_success();
    let root_pk = root_public_key(&root_secret());
    world
        .call(
            &bob_s,
            "vote_pk",
            json!({"public_key": root_pk, "attempt": 0}),
            30,
            yocto(0),
        )
        .await
        .expect_failure("is not a participant");
    let voted = world
        .call(
            &node_signers[0],
            "vote_pk",
            json!({"public_key": root_pk, "attempt": 0}),
            30,
            yocto(0),
        )
        .await;
    assert_eq!(voted.expect_success(), json!(false));
    world
        .call(
            &node_signers[0],
            "vote_pk",
            json!({"public_key": root_pk, "attempt": 0}),
            30,
            yocto(0),
        )
        .await
        .expect_failure("has already voted on this");
    // Every candidate must vote for the key, not only a threshold of them.
    for (i, started) in [(1, false), (2, true)] {
        let voted = world
            .call(
                &node_signers[i],
                "vote_pk",
                json!({"public_key": root_pk, "attempt": 0}),
                30,
                yocto(0),
            )
            .await;
        assert_eq!(voted.expect_success(), json!(started));
    }
    let state = world.rpc.view(&contract, "state", json!({})).await.unwrap();
    assert_eq!(state["Running"]["epoch"], 0);
    assert_eq!(
        state["Running"]["participants"].as_array().unwrap().len(),
        3
    );
    assert_eq!(
        world
            .rpc
            .view(&contract, "public_key", json!({}))
            .await
            .unwrap(),
        json!(root_pk.to_string())
    );

    assert_eq!(
        world
            .rpc
            .view(&contract, "experimental_signature_deposit", json!({}))
            .await
            .unwrap(),
        json!("1")
    );

    // ---- sign → respond → the signature comes back ----
    let payload_hex = hex::encode([7u8; 32]);
    let v2 = json!({"path": "eth/1", "payload_v2": {"Ecdsa": payload_hex}, "domain_id": 0});
    let (waiting, sign_tx, event) = world.start_sign(&alice_s, v2.clone()).await;
    assert_eq!(event["standard"], "chainsig");
    assert_eq!(event["event"], "sign_request");
    assert_eq!(event["data"][0]["predecessor"], json!(alice));
    assert_eq!(event["data"][0]["request"], v2);
    let (request, payload, tweak) = request_of(&event);
    assert_eq!(
        world
            .rpc
            .view(&contract, "is_pending", json!({"request": request}))
            .await
            .unwrap(),
        json!(true)
    );

    // Refused responses leave the request pending.
    let good = make_signature(&root_secret(), &tweak, &payload);
    let wrong_key = make_signature(&(root_secret() + Scalar::ONE), &tweak, &payload);
    world
        .call(
            &bob_s,
            "respond",
            json!({"request": request, "response": good}),
            30,
            yocto(0),
        )
        .await
        .expect_failure("only participants may respond");
    world
        .call(
            &node_signers[2],
            "respond",
            json!({"request": request, "response": wrong_key}),
            30,
            yocto(0),
        )
        .await
        .expect_failure("does not verify under the requester's derived public key");
    let mut malformed = serde_json::to_value(good).unwrap();
    malformed["recovery_id"] = json!(5);
    world
        .call(
            &node_signers[2],
            "respond",
            json!({"request": request, "response": malformed}),
            30,
            yocto(0),
        )
        .await
        .expect_failure("recovery id must be 0 or 1");
    assert_eq!(
        world
            .rpc
            .view(&contract, "is_pending", json!({"request": request}))
            .await
            .unwrap(),
        json!(true)
    );

    world
        .call(
            &node_signers[2],
            "respond",
            json!({"request": request, "response": good}),
            30,
            yocto(0),
        )
        .await
        .expect_success();
    let signed = waiting.await.unwrap();
    world.record(&sign_tx).await;
    let returned = signed.expect_success();
    assert_eq!(returned, serde_json::to_value(good).unwrap());
    assert_eq!(returned["scheme"], "Secp256k1");
    // The client's own check: it verifies under derived_public_key.
    let derived: PublicKey = serde_json::from_value(
        world
            .rpc
            .view(
                &contract,
                "derived_public_key",
                json!({"path": "eth/1", "predecessor": alice}),
            )
            .await
            .unwrap(),
    )
    .unwrap();
    let SignatureResponse::Secp256k1(sig) =
        serde_json::from_value::<SignatureResponse>(returned).unwrap();
    sig.verify(&derived, &payload).unwrap();

    // ---- identical requests share one response (legacy argument form) ----
    let legacy = json!({"payload": vec![9u8; 32], "path": "btc", "key_version": 0});
    let (first, _, event1) = world.start_sign(&alice_s, legacy.clone()).await;
    let (second, _, event2) = world.start_sign(&alice_s, legacy).await;
    assert_eq!(event1["data"][0]["tweak"], event2["data"][0]["tweak"]);
    assert_ne!(event1["data"][0]["yield_id"], event2["data"][0]["yield_id"]);
    let load = world
        .rpc
        .view(&contract, "system_load", json!({}))
        .await
        .unwrap();
    assert_eq!(
        (
            load["pending_requests"].as_u64(),
            load["waiting_calls"].as_u64()
        ),
        (Some(1), Some(2))
    );
    let (request, payload, tweak) = request_of(&event1);
    let response = make_signature(&root_secret(), &tweak, &payload);
    world
        .call(
            &node_signers[0],
            "respond",
            json!({"request": request, "response": response}),
            30,
            yocto(0),
        )
        .await
        .expect_success();
    for waiting in [first, second] {
        let outcome = waiting.await.unwrap();
        assert_eq!(
            outcome.expect_success(),
            serde_json::to_value(response).unwrap()
        );
    }

    // ---- refusals at the argument level ----
    let over_n = json!({"path": "p", "payload_v2": {"Ecdsa": "ff".repeat(32)}, "domain_id": 0});
    world
        .call(&alice_s, "sign", json!({"request": over_n}), 50, yocto(1))
        .await
        .expect_failure("payload must be below the secp256k1 group order");
    let short = json!({"path": "p", "payload": vec![1u8; 31], "key_version": 0});
    world
        .call(&alice_s, "sign", json!({"request": short}), 50, yocto(1))
        .await
        .expect_failure("expected 32 bytes, got 31");
    let long_path = json!({"path": "p".repeat(1025), "payload_v2": {"Ecdsa": payload_hex}});
    world
        .call(
            &alice_s,
            "sign",
            json!({"request": long_path}),
            50,
            yocto(1),
        )
        .await
        .expect_failure("derivation path is 1025 bytes long");
    world
        .call(&alice_s, "sign", json!({"request": v2}), 50, yocto(0))
        .await
        .expect_failure("attach a deposit of at least 1 yoctoNEAR");
    world
        .call(&alice_s, "sign", json!({"request": v2}), 10, yocto(1))
        .await
        .expect_failure("not enough gas");
    world
        .call(
            &alice_s,
            "vote_join",
            json!({"candidate": bob}),
            30,
            yocto(1),
        )
        .await
        .expect_failure("Method vote_join doesn't accept deposit");

    // ---- a request nobody answers times out, and nothing is left behind ----
    let timeout_request =
        json!({"path": "lonely", "payload_v2": {"Ecdsa": payload_hex}, "domain_id": 0});
    let (waiting, timeout_tx, _) = world.start_sign(&alice_s, timeout_request).await;
    let outcome = waiting.await.unwrap();
    world.record(&timeout_tx).await;
    outcome.expect_failure("signature request timed out");
    let load = world
        .rpc
        .view(&contract, "system_load", json!({}))
        .await
        .unwrap();
    assert_eq!(load["pending_requests"], 0, "{load}");
    assert_eq!(load["waiting_calls"], 0, "{load}");
    assert_eq!(load["timeouts_total"], 1, "{load}");
    assert_eq!(load["responses_total"], 2, "{load}");

    // ---- a join reshares into epoch 1; a leave back into epoch 2 ----
    let n3 = &node_signers[3];
    world
        .call(n3, "join", json!({"url": "https://n3.local:3000", "tls_public_key": n3.public_key(), "sign_public_key": n3.public_key()}), 30, yocto(0))
        .await
        .expect_success();
    for voter in &node_signers[..2] {
        world
            .call(
                voter,
                "vote_join",
                json!({"candidate": nodes[3]}),
                30,
                yocto(0),
            )
            .await
            .expect_success();
    }
    let state = world.rpc.view(&contract, "state", json!({})).await.unwrap();
    assert_eq!(
        state["Resharing"]["new_participants"][3]["account_id"],
        json!(nodes[3])
    );
    world
        .call(
            &node_signers[0],
            "vote_reshared",
            json!({"epoch": 0, "attempt": 0}),
            30,
            yocto(0),
        )
        .await
        .expect_failure("stale epoch 0");
    for voter in node_signers[..3].iter().chain([n3]) {
        world
            .call(
                voter,
                "vote_reshared",
                json!({"epoch": 1, "attempt": 0}),
                30,
                yocto(0),
            )
            .await
            .expect_success();
    }
    for voter in &node_signers[..2] {
        world
            .call(
                voter,
                "vote_leave",
                json!({"participant": nodes[3]}),
                30,
                yocto(0),
            )
            .await
            .expect_success();
    }
    for voter in &node_signers[..3] {
        world
            .call(
                voter,
                "vote_reshared",
                json!({"epoch": 2, "attempt": 0}),
                30,
                yocto(0),
            )
            .await
            .expect_success();
    }
    let state = world.rpc.view(&contract, "state", json!({})).await.unwrap();
    assert_eq!(state["Running"]["epoch"], 2);
    assert_eq!(
        state["Running"]["participants"].as_array().unwrap().len(),
        3
    );
    assert_eq!(state["Running"]["public_key"], json!(root_pk.to_string()));

    eprintln!("gas burnt per method call (TGas, min..max over calls):");
    for (method, gas) in &world.gas {
        let min = *gas.iter().min().unwrap() as f64 / 1e12;
        let max = *gas.iter().max().unwrap() as f64 / 1e12;
        eprintln!(
            "  {method:<16} {min:>7.3} .. {max:>7.3}  ({} calls)",
            gas.len()
        );
    }
    devnet.stop().await;
}
