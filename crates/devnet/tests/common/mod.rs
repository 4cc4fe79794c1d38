//! Helpers for the devnet tests: a small test contract (WAT) and a JSON-RPC client wrapper.
#![allow(dead_code)]

use std::time::Duration;

use chainsig_devnet::{Devnet, DevnetConfig};
use near_crypto::{InMemorySigner, KeyType, PublicKey, SecretKey, Signer};
use near_jsonrpc_client::errors::JsonRpcError;
use near_jsonrpc_client::methods;
use near_jsonrpc_client::JsonRpcClient;
use near_jsonrpc_primitives::types::query::QueryResponseKind;
use near_jsonrpc_primitives::types::transactions::RpcTransactionError;
use near_primitives::action::{Action, FunctionCallAction};
use near_primitives::hash::CryptoHash;
use near_primitives::transaction::SignedTransaction;
use near_primitives::types::{AccountId, Balance, BlockReference, Finality, Gas};
use near_primitives::views::{FinalExecutionOutcomeView, QueryRequest};

/// A test contract: storage, logs, a panic, a cross-contract call with a callback, and
/// yield/resume.
pub const TEST_WAT: &str = r#"
(module
  (import "env" "input" (func $input (param i64)))
  (import "env" "read_register" (func $read_register (param i64 i64)))
  (import "env" "register_len" (func $register_len (param i64) (result i64)))
  (import "env" "value_return" (func $value_return (param i64 i64)))
  (import "env" "log_utf8" (func $log_utf8 (param i64 i64)))
  (import "env" "panic_utf8" (func $panic_utf8 (param i64 i64)))
  (import "env" "storage_write" (func $storage_write (param i64 i64 i64 i64 i64) (result i64)))
  (import "env" "storage_read" (func $storage_read (param i64 i64 i64) (result i64)))
  (import "env" "current_account_id" (func $current_account_id (param i64)))
  (import "env" "promise_create" (func $promise_create (param i64 i64 i64 i64 i64 i64 i64 i64) (result i64)))
  (import "env" "promise_then" (func $promise_then (param i64 i64 i64 i64 i64 i64 i64 i64 i64) (result i64)))
  (import "env" "promise_yield_create" (func $promise_yield_create (param i64 i64 i64 i64 i64 i64 i64) (result i64)))
  (import "env" "promise_yield_resume" (func $promise_yield_resume (param i64 i64 i64 i64) (result i32)))
  (import "env" "promise_result" (func $promise_result (param i64 i64) (result i64)))
  (import "env" "promise_return" (func $promise_return (param i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "k")
  (data (i32.const 8) "y")
  (data (i32.const 16) "on_result")
  (data (i32.const 32) "boom")
  (data (i32.const 40) "timeout")
  (data (i32.const 48) "no yield")
  (data (i32.const 64) "set")
  (data (i32.const 72) "get")
  (func (export "set")
    (call $input (i64.const 0))
    (call $read_register (i64.const 0) (i64.const 1024))
    (drop (call $storage_write (i64.const 1) (i64.const 0)
      (call $register_len (i64.const 0)) (i64.const 1024) (i64.const 1)))
    (call $log_utf8 (i64.const 3) (i64.const 64)))
  (func (export "get")
    (if (i64.eq (call $storage_read (i64.const 1) (i64.const 0) (i64.const 0)) (i64.const 1))
      (then
        (call $read_register (i64.const 0) (i64.const 1024))
        (call $value_return (call $register_len (i64.const 0)) (i64.const 1024)))))
  (func (export "fail")
    (call $panic_utf8 (i64.const 4) (i64.const 32)))
  (func (export "call_get")
    (local $p i64)
    (call $input (i64.const 0))
    (call $read_register (i64.const 0) (i64.const 2048))
    (call $current_account_id (i64.const 1))
    (call $read_register (i64.const 1) (i64.const 3072))
    (local.set $p (call $promise_create
      (call $register_len (i64.const 0)) (i64.const 2048)
      (i64.const 3) (i64.const 72) (i64.const 0) (i64.const 0)
      (i64.const 96) (i64.const 10000000000000)))
    (call $promise_return (call $promise_then (local.get $p)
      (call $register_len (i64.const 1)) (i64.const 3072)
      (i64.const 9) (i64.const 16) (i64.const 0) (i64.const 0)
      (i64.const 96) (i64.const 10000000000000))))
  (func (export "wait")
    (local $p i64)
    (local.set $p (call $promise_yield_create (i64.const 9) (i64.const 16)
      (i64.const 0) (i64.const 0) (i64.const 0) (i64.const 1) (i64.const 0)))
    (call $read_register (i64.const 0) (i64.const 1024))
    (drop (call $storage_write (i64.const 1) (i64.const 8) (i64.const 32) (i64.const 1024) (i64.const 1)))
    (call $promise_return (local.get $p)))
  (func (export "resume")
    (call $input (i64.const 0))
    (call $read_register (i64.const 0) (i64.const 2048))
    (drop (call $storage_read (i64.const 1) (i64.const 8) (i64.const 1)))
    (call $read_register (i64.const 1) (i64.const 1024))
    (if (i32.ne (call $promise_yield_resume (i64.const 32) (i64.const 1024)
          (call $register_len (i64.const 0)) (i64.const 2048)) (i32.const 1))
      (then (call $panic_utf8 (i64.const 8) (i64.const 48)))))
  (func (export "on_result")
    (if (i64.eq (call $promise_result (i64.const 0) (i64.const 0)) (i64.const 1))
      (then
        (call $read_register (i64.const 0) (i64.const 1024))
        (call $value_return (call $register_len (i64.const 0)) (i64.const 1024)))
      (else (call $panic_utf8 (i64.const 7) (i64.const 40)))))
)
"#;

pub fn test_wasm() -> Vec<u8> {
    wat::parse_str(TEST_WAT).expect("valid wat")
}

pub const TGAS: u64 = 1_000_000_000_000;

pub fn near(n: u128) -> Balance {
    Balance::from_yoctonear(n * 10u128.pow(24))
}

pub async fn start(home: &std::path::Path, block_ms: u64) -> Devnet {
    let mut config = DevnetConfig::new(home);
    config.rpc_addr = "127.0.0.1:0".parse().unwrap();
    config.block_time = Duration::from_millis(block_ms);
    config.tx_timeout = Duration::from_secs(20);
    Devnet::start(config).await.expect("devnet starts")
}

pub struct Client {
    pub rpc: JsonRpcClient,
}

impl Client {
    pub fn new(devnet: &Devnet) -> Self {
        Client {
            rpc: JsonRpcClient::connect(devnet.rpc_url()),
        }
    }

    pub async fn latest_hash(&self) -> CryptoHash {
        let block = self
            .rpc
            .call(methods::block::RpcBlockRequest {
                block_reference: BlockReference::Finality(Finality::Final),
            })
            .await
            .expect("block");
        block.header.hash
    }

    /// At the head: a transaction sent right after another sees the latter's nonce there,
    /// not yet at `final` (as on NEAR).
    pub async fn nonce(&self, account: &AccountId, pk: &PublicKey) -> u64 {
        let r = self
            .rpc
            .call(methods::query::RpcQueryRequest {
                block_reference: BlockReference::Finality(Finality::None),
                request: QueryRequest::ViewAccessKey {
                    account_id: account.clone(),
                    public_key: pk.clone(),
                },
            })
            .await
            .expect("access key");
        match r.kind {
            QueryResponseKind::AccessKey(ak) => ak.nonce,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub async fn sign(
        &self,
        signer: &Signer,
        receiver: &AccountId,
        actions: Vec<Action>,
    ) -> SignedTransaction {
        let account = signer.get_account_id();
        let nonce = self.nonce(&account, &signer.public_key()).await + 1;
        let block_hash = self.latest_hash().await;
        sign_tx(signer, receiver, nonce, block_hash, actions)
    }

    pub async fn commit(
        &self,
        tx: SignedTransaction,
    ) -> Result<FinalExecutionOutcomeView, JsonRpcError<RpcTransactionError>> {
        self.rpc
            .call(methods::broadcast_tx_commit::RpcBroadcastTxCommitRequest {
                signed_transaction: tx,
            })
            .await
    }

    pub async fn send(
        &self,
        signer: &Signer,
        receiver: &AccountId,
        actions: Vec<Action>,
    ) -> FinalExecutionOutcomeView {
        let tx = self.sign(signer, receiver, actions).await;
        self.commit(tx).await.expect("transaction accepted")
    }

    /// At the head, where the effects of a transaction `send` just returned are (at `final`
    /// they show a couple of blocks later, as on NEAR).
    pub async fn view(&self, account: &AccountId, method: &str, args: &[u8]) -> Vec<u8> {
        let r = self
            .rpc
            .call(methods::query::RpcQueryRequest {
                block_reference: BlockReference::Finality(Finality::None),
                request: QueryRequest::CallFunction {
                    account_id: account.clone(),
                    method_name: method.to_string(),
                    args: args.to_vec().into(),
                },
            })
            .await
            .expect("view call");
        match r.kind {
            QueryResponseKind::CallResult(c) => c.result,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Signs `actions` from `signer` to `receiver` (the library's own helper).
pub use chainsig_devnet::client::sign_transaction as sign_tx;

pub fn call(method: &str, args: &[u8], gas_tgas: u64, deposit: Balance) -> Action {
    Action::FunctionCall(Box::new(FunctionCallAction {
        method_name: method.to_string(),
        args: args.to_vec(),
        gas: Gas::from_gas(gas_tgas * TGAS),
        deposit,
    }))
}

pub fn new_signer(account: &AccountId) -> Signer {
    InMemorySigner::from_secret_key(account.clone(), SecretKey::from_random(KeyType::ED25519))
}
