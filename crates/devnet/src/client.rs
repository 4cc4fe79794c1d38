//! A small JSON-RPC client for setting a devnet up (accounts, contracts, calls), on top of
//! `near-jsonrpc-client`. Accounts it creates get a near-cli key file under `<home>/keys/`
//! when it knows the devnet's home.

use std::path::Path;

use near_crypto::{InMemorySigner, KeyType, SecretKey, Signer};
use near_jsonrpc_client::{methods, JsonRpcClient};
use near_jsonrpc_primitives::types::query::QueryResponseKind;
use near_primitives::account::{AccessKey, AccessKeyPermission};
use near_primitives::action::{
    Action, AddKeyAction, CreateAccountAction, DeployContractAction, FunctionCallAction,
    TransferAction,
};
use near_primitives::errors::TxExecutionError;
use near_primitives::hash::CryptoHash;
use near_primitives::transaction::{SignedTransaction, Transaction, TransactionV0};
use near_primitives::types::{AccountId, Balance, BlockReference, Finality, Gas};
use near_primitives::views::{FinalExecutionOutcomeView, FinalExecutionStatus, QueryRequest};

use crate::genesis::Home;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request did not get an answer (transport, or an error the server returned).
    #[error("json-rpc: {0}")]
    Rpc(String),
    /// The transaction ran and failed.
    #[error("transaction failed: {0}")]
    Failed(TxExecutionError),
    /// The answer was not what the call expects.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    #[error(transparent)]
    Devnet(#[from] crate::error::DevnetError),
}

fn rpc_err(e: impl std::fmt::Display) -> ClientError {
    ClientError::Rpc(e.to_string())
}

/// Signs `actions` from `signer` to `receiver`.
pub fn sign_transaction(
    signer: &Signer,
    receiver: &AccountId,
    nonce: u64,
    block_hash: CryptoHash,
    actions: Vec<Action>,
) -> SignedTransaction {
    let tx = Transaction::V0(TransactionV0 {
        signer_id: signer.get_account_id(),
        public_key: signer.public_key(),
        nonce,
        receiver_id: receiver.clone(),
        block_hash,
        actions,
    });
    let (hash, _) = tx.get_hash_and_size();
    SignedTransaction::new(signer.sign(hash.as_ref()), tx)
}

/// A function call action with JSON arguments.
pub fn function_call(method: &str, args: &serde_json::Value, gas: Gas, deposit: Balance) -> Action {
    Action::FunctionCall(Box::new(FunctionCallAction {
        method_name: method.to_string(),
        args: args.to_string().into_bytes(),
        gas,
        deposit,
    }))
}

pub struct DevnetClient {
    rpc: JsonRpcClient,
    home: Option<Home>,
}

impl DevnetClient {
    /// A client for the devnet at `url` (e.g. `http://127.0.0.1:3030`).
    pub fn new(url: &str) -> Self {
        DevnetClient {
            rpc: JsonRpcClient::connect(url),
            home: None,
        }
    }

    /// A client that writes key files for the accounts it creates into `home/keys/`.
    pub fn with_home(url: &str, home: &Path) -> Self {
        DevnetClient {
            rpc: JsonRpcClient::connect(url),
            home: Some(Home::new(home)),
        }
    }

    pub fn rpc(&self) -> &JsonRpcClient {
        &self.rpc
    }

    /// The header of the block at `block_reference`.
    async fn header(
        &self,
        block_reference: BlockReference,
    ) -> Result<near_primitives::views::BlockHeaderView, ClientError> {
        let block = self
            .rpc
            .call(methods::block::RpcBlockRequest { block_reference })
            .await
            .map_err(rpc_err)?;
        Ok(block.header)
    }

    pub async fn latest_block_hash(&self) -> Result<CryptoHash, ClientError> {
        Ok(self.header(BlockReference::latest()).await?.hash)
    }

    /// The height of the head (the latest block, `optimistic`).
    pub async fn head_height(&self) -> Result<u64, ClientError> {
        Ok(self.header(BlockReference::latest()).await?.height)
    }

    /// The height of the last final block.
    pub async fn final_height(&self) -> Result<u64, ClientError> {
        Ok(self
            .header(BlockReference::Finality(Finality::Final))
            .await?
            .height)
    }

    /// The nonce of `signer`'s access key at the head (`optimistic`): the state a new
    /// transaction is checked against. At `final` it would lag the transactions this client
    /// has just sent by a couple of blocks.
    pub async fn nonce(&self, signer: &Signer) -> Result<u64, ClientError> {
        let r = self
            .rpc
            .call(methods::query::RpcQueryRequest {
                block_reference: BlockReference::Finality(Finality::None),
                request: QueryRequest::ViewAccessKey {
                    account_id: signer.get_account_id(),
                    public_key: signer.public_key(),
                },
            })
            .await
            .map_err(rpc_err)?;
        match r.kind {
            QueryResponseKind::AccessKey(k) => Ok(k.nonce),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Sends a transaction and waits for its final outcome (failures included).
    pub async fn send(
        &self,
        signer: &Signer,
        receiver: &AccountId,
        actions: Vec<Action>,
    ) -> Result<FinalExecutionOutcomeView, ClientError> {
        let nonce = self.nonce(signer).await? + 1;
        let block_hash = self.latest_block_hash().await?;
        let tx = sign_transaction(signer, receiver, nonce, block_hash, actions);
        self.rpc
            .call(methods::broadcast_tx_commit::RpcBroadcastTxCommitRequest {
                signed_transaction: tx,
            })
            .await
            .map_err(rpc_err)
    }

    /// Sends a transaction and returns its result value, or its failure as an error.
    pub async fn execute(
        &self,
        signer: &Signer,
        receiver: &AccountId,
        actions: Vec<Action>,
    ) -> Result<Vec<u8>, ClientError> {
        let outcome = self.send(signer, receiver, actions).await?;
        match outcome.status {
            FinalExecutionStatus::SuccessValue(v) => Ok(v),
            FinalExecutionStatus::Failure(e) => Err(ClientError::Failed(e)),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Creates `new_account` (funded by `creator` with `amount`, optionally with `code`
    /// deployed) with a new full-access key, writes its key file when the home is known, and
    /// returns its signer.
    pub async fn create_account(
        &self,
        creator: &Signer,
        new_account: &AccountId,
        amount: Balance,
        code: Option<Vec<u8>>,
    ) -> Result<Signer, ClientError> {
        let secret = SecretKey::from_random(KeyType::ED25519);
        let mut actions = vec![
            Action::CreateAccount(CreateAccountAction {}),
            Action::Transfer(TransferAction { deposit: amount }),
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
        self.execute(creator, new_account, actions).await?;
        if let Some(home) = &self.home {
            home.write_key(new_account, &secret)?;
        }
        Ok(InMemorySigner::from_secret_key(new_account.clone(), secret))
    }

    /// Calls a view method with JSON arguments and parses its JSON result. Reads the head
    /// (`optimistic`), where the effects of a transaction [`DevnetClient::send`] just returned
    /// already are (`final` has them a couple of blocks later; the devnet never forks).
    pub async fn view<T: serde::de::DeserializeOwned>(
        &self,
        contract: &AccountId,
        method: &str,
        args: &serde_json::Value,
    ) -> Result<T, ClientError> {
        let r = self
            .rpc
            .call(methods::query::RpcQueryRequest {
                block_reference: BlockReference::Finality(Finality::None),
                request: QueryRequest::CallFunction {
                    account_id: contract.clone(),
                    method_name: method.to_string(),
                    args: args.to_string().into_bytes().into(),
                },
            })
            .await
            .map_err(rpc_err)?;
        match r.kind {
            QueryResponseKind::CallResult(c) => serde_json::from_slice(&c.result)
                .map_err(|e| ClientError::Unexpected(format!("{method} result: {e}"))),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }
}
