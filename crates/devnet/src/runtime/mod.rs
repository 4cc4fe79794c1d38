//! The transaction runtime: checks and charges signed transactions, applies receipts and their
//! actions, runs contract code in `near-vm-runner`, and delivers yield resumes and timeouts.

pub mod ext;
pub mod fees;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use near_parameters::{RuntimeConfig, RuntimeConfigStore};
use near_primitives::account::{AccessKey, AccessKeyPermission};
use near_primitives::action::Action;
use near_primitives::errors::{
    ActionError, ActionErrorKind, ActionsValidationError, CompilationError, FunctionCallError,
    InvalidAccessKeyError, InvalidTxError, MethodResolveError, TxExecutionError,
};
use near_primitives::hash::{hash, CryptoHash};
use near_primitives::transaction::SignedTransaction;
use near_primitives::types::{AccountId, Balance, Gas};
use near_primitives::utils::{
    create_action_hash_from_receipt_id, create_random_seed, create_receipt_id_from_receipt_id,
    create_receipt_id_from_transaction,
};
use near_primitives::views::{ExecutionMetadataView, ExecutionOutcomeView, ExecutionStatusView};
use near_primitives_core::account::AccountContract;
use near_primitives_core::config::ViewConfig;
use near_vm_runner::logic::types::PromiseResult;
use near_vm_runner::logic::{GasCounter, ReturnData, VMContext};
use near_vm_runner::{ContractCode, FilesystemContractRuntimeCache};

use crate::error::DevnetError;
use crate::receipt::{ActionReceipt, Receipt, ReceiptBody, SYSTEM_ACCOUNT};
use crate::state::{
    access_key_key, code_key, hash_key, yield_queue_key, AccountRecord, State, YieldEntry,
    COL_DATA_WAITER, COL_PENDING_COUNT, COL_POSTPONED, COL_RECEIVED_DATA, COL_YIELD,
    COL_YIELD_QUEUE,
};
use ext::{DevnetExt, NewReceipt};
use fees::{action_gas, receipt_exec_base, receipt_gas, total_deposit};

/// The protocol version the devnet runs (near-sdk 5.30's promise code needs 88).
pub const PROTOCOL_VERSION: u32 = 88;
/// Gas price in yoctoNEAR per gas (NEAR's minimum gas price).
pub const GAS_PRICE: u128 = 100_000_000;
/// Accounts using at most this many bytes need no balance for storage (NEP-448).
const ZERO_BALANCE_STORAGE: u64 = 770;

/// What a block gives the receipts it executes.
#[derive(Clone, Debug)]
pub struct BlockContext {
    pub height: u64,
    pub timestamp_ns: u64,
    pub random_seed: CryptoHash,
}

/// What applying receipts produced in a block.
#[derive(Default)]
pub struct ApplyOutput {
    pub outcomes: Vec<(CryptoHash, ExecutionOutcomeView)>,
    /// Receipts for the next block.
    pub outgoing: Vec<Receipt>,
    /// Receipts created in this block (kept for `EXPERIMENTAL_tx_status`).
    pub created: Vec<Receipt>,
}

/// A view call that could not run.
#[derive(Debug)]
pub enum ViewCallError {
    UnknownAccount,
    NoContractCode,
    Failed {
        error: FunctionCallError,
        logs: Vec<String>,
    },
}

pub struct Runtime {
    pub config: Arc<RuntimeConfig>,
    cache: FilesystemContractRuntimeCache,
    pub chain_id: String,
}

/// A transaction whose signature has been checked (done outside the chain lock).
#[derive(Clone, Debug)]
pub struct VerifiedTx(SignedTransaction);

impl VerifiedTx {
    pub fn new(tx: SignedTransaction) -> Result<Self, InvalidTxError> {
        let pk = tx.transaction.public_key();
        if !tx.signature.verify(tx.get_hash().as_ref(), pk) {
            return Err(InvalidTxError::InvalidSignature);
        }
        Ok(VerifiedTx(tx))
    }

    pub fn get(&self) -> &SignedTransaction {
        &self.0
    }

    pub fn into_inner(self) -> SignedTransaction {
        self.0
    }
}

struct Charge {
    account: AccountRecord,
    access_key: AccessKey,
    burnt: u64,
}

fn fc_error(e: near_vm_runner::logic::errors::FunctionCallError) -> FunctionCallError {
    use near_vm_runner::logic::errors::{FunctionCallError as F, MethodResolveError as M};
    match e {
        F::MethodResolveError(m) => FunctionCallError::MethodResolveError(match m {
            M::MethodEmptyName => MethodResolveError::MethodEmptyName,
            M::MethodNotFound => MethodResolveError::MethodNotFound,
            M::MethodInvalidSignature => MethodResolveError::MethodInvalidSignature,
        }),
        F::CompilationError(c) => {
            FunctionCallError::CompilationError(CompilationError::WasmerCompileError {
                msg: c.to_string(),
            })
        }
        other => FunctionCallError::ExecutionError(other.to_string()),
    }
}

fn outcome(
    executor_id: AccountId,
    logs: Vec<String>,
    receipt_ids: Vec<CryptoHash>,
    gas_burnt: u64,
    gas_price: u128,
    status: ExecutionStatusView,
) -> ExecutionOutcomeView {
    ExecutionOutcomeView {
        logs,
        receipt_ids,
        gas_burnt: Gas::from_gas(gas_burnt),
        tokens_burnt: Balance::from_yoctonear((gas_burnt as u128).saturating_mul(gas_price)),
        executor_id,
        status,
        metadata: ExecutionMetadataView::default(),
    }
}

impl Runtime {
    pub fn new(home: &Path, chain_id: String) -> Result<Self, DevnetError> {
        let store = RuntimeConfigStore::new(None);
        let config = store.get_config(PROTOCOL_VERSION).clone();
        let cache = FilesystemContractRuntimeCache::with_memory_cache(
            home,
            None::<&Path>,
            "contract.cache",
            32,
            None,
            1 << 30,
            near_vm_runner::noop_background_spawner(),
        )
        .map_err(|e| DevnetError::Vm(format!("contract cache: {e}")))?;
        Ok(Runtime {
            config,
            cache,
            chain_id,
        })
    }

    pub fn yield_timeout(&self) -> u64 {
        self.config
            .wasm_config
            .limit_config
            .yield_timeout_length_in_blocks
    }

    fn storage_bytes_per_record(&self) -> u64 {
        self.config.fees.storage_usage_config.num_extra_bytes_record
    }

    pub fn new_account_storage(&self) -> u64 {
        self.config.fees.storage_usage_config.num_bytes_account
    }

    pub fn access_key_storage(&self, pk: &near_crypto::PublicKey, ak: &AccessKey) -> u64 {
        let pk_len = borsh::object_length(pk).unwrap_or(33) as u64;
        let ak_len = borsh::object_length(ak).unwrap_or(9) as u64;
        pk_len + ak_len + self.storage_bytes_per_record()
    }

    /// The balance `account` must keep for its storage, if it lacks it.
    fn storage_shortfall(&self, account: &AccountRecord) -> Option<u128> {
        if account.storage_usage <= ZERO_BALANCE_STORAGE {
            return None;
        }
        let per_byte = self
            .config
            .fees
            .storage_usage_config
            .storage_amount_per_byte
            .as_yoctonear();
        let required = (account.storage_usage as u128).saturating_mul(per_byte);
        let have = account.amount.saturating_add(account.locked);
        (have < required).then_some(required)
    }

    fn validate_actions(&self, actions: &[Action]) -> Result<(), InvalidTxError> {
        let limits = &self.config.wasm_config.limit_config;
        let invalid = |e| Err(InvalidTxError::ActionsValidation(e));
        if actions.len() as u64 > limits.max_actions_per_receipt {
            return invalid(ActionsValidationError::TotalNumberOfActionsExceeded {
                total_number_of_actions: actions.len() as u64,
                limit: limits.max_actions_per_receipt,
            });
        }
        let mut total_gas: u64 = 0;
        for (i, a) in actions.iter().enumerate() {
            match a {
                Action::CreateAccount(_)
                | Action::Transfer(_)
                | Action::AddKey(_)
                | Action::DeleteKey(_) => {}
                Action::DeployContract(d) => {
                    if d.code.len() as u64 > limits.max_contract_size {
                        return invalid(ActionsValidationError::ContractSizeExceeded {
                            size: d.code.len() as u64,
                            limit: limits.max_contract_size,
                        });
                    }
                }
                Action::DeleteAccount(_) => {
                    if i + 1 != actions.len() {
                        return Err(InvalidTxError::ActionsValidation(
                            ActionsValidationError::DeleteActionMustBeFinal,
                        ));
                    }
                }
                Action::FunctionCall(fc) => {
                    if fc.method_name.len() as u64 > limits.max_length_method_name {
                        return invalid(
                            ActionsValidationError::FunctionCallMethodNameLengthExceeded {
                                length: fc.method_name.len() as u64,
                                limit: limits.max_length_method_name,
                            },
                        );
                    }
                    if fc.args.len() as u64 > limits.max_arguments_length {
                        return invalid(
                            ActionsValidationError::FunctionCallArgumentsLengthExceeded {
                                length: fc.args.len() as u64,
                                limit: limits.max_arguments_length,
                            },
                        );
                    }
                    if fc.gas.as_gas() == 0 {
                        return Err(InvalidTxError::ActionsValidation(
                            ActionsValidationError::FunctionCallZeroAttachedGas,
                        ));
                    }
                    total_gas = total_gas.saturating_add(fc.gas.as_gas());
                }
                other => {
                    let name = format!("{other:?}");
                    let name = name
                        .split(['(', ' ', '{'])
                        .next()
                        .unwrap_or("action")
                        .to_string();
                    return Err(InvalidTxError::ActionsValidation(
                        ActionsValidationError::UnsupportedProtocolFeature {
                            protocol_feature: format!("{name} (not supported by the devnet)"),
                            version: PROTOCOL_VERSION,
                        },
                    ));
                }
            }
        }
        if total_gas > limits.max_total_prepaid_gas.as_gas() {
            return Err(InvalidTxError::ActionsValidation(
                ActionsValidationError::TotalPrepaidGasExceeded {
                    total_prepaid_gas: Gas::from_gas(total_gas),
                    limit: limits.max_total_prepaid_gas,
                },
            ));
        }
        Ok(())
    }

    fn check_tx(
        &self,
        state: &State,
        tx: &VerifiedTx,
        height: u64,
    ) -> Result<Charge, InvalidTxError> {
        let tx = &tx.0;
        let t = &tx.transaction;
        let signer_id = t.signer_id();
        let pk = t.public_key();
        let nonce = t.nonce().nonce();
        self.validate_actions(t.actions())?;
        let mut account =
            state
                .account(signer_id)
                .ok_or_else(|| InvalidTxError::SignerDoesNotExist {
                    signer_id: signer_id.clone(),
                })?;
        let mut access_key = state.access_key(signer_id, pk).ok_or_else(|| {
            InvalidTxError::InvalidAccessKeyError(InvalidAccessKeyError::AccessKeyNotFound {
                account_id: signer_id.clone(),
                public_key: Box::new(pk.clone()),
            })
        })?;
        if nonce <= access_key.nonce {
            return Err(InvalidTxError::InvalidNonce {
                tx_nonce: nonce,
                ak_nonce: access_key.nonce,
            });
        }
        let upper_bound = height.saturating_mul(AccessKey::ACCESS_KEY_NONCE_RANGE_MULTIPLIER);
        if nonce >= upper_bound {
            return Err(InvalidTxError::NonceTooLarge {
                tx_nonce: nonce,
                upper_bound,
            });
        }
        let sir = signer_id == t.receiver_id();
        let (burnt, prepaid) = receipt_gas(&self.config.fees, t.actions(), sir);
        let gas_cost = (burnt as u128)
            .checked_add(prepaid as u128)
            .and_then(|g| g.checked_mul(GAS_PRICE))
            .ok_or(InvalidTxError::CostOverflow)?;
        let total = gas_cost
            .checked_add(total_deposit(t.actions()))
            .ok_or(InvalidTxError::CostOverflow)?;
        if let AccessKeyPermission::FunctionCall(perm) = &mut access_key.permission {
            if let Some(allowance) = perm.allowance.as_mut() {
                let left = allowance.as_yoctonear().checked_sub(total).ok_or_else(|| {
                    InvalidTxError::InvalidAccessKeyError(
                        InvalidAccessKeyError::NotEnoughAllowance {
                            account_id: signer_id.clone(),
                            public_key: Box::new(pk.clone()),
                            allowance: *allowance,
                            cost: Balance::from_yoctonear(total),
                        },
                    )
                })?;
                *allowance = Balance::from_yoctonear(left);
            }
            if t.actions().is_empty() {
                return Err(InvalidTxError::InvalidAccessKeyError(
                    InvalidAccessKeyError::RequiresFullAccess,
                ));
            }
            for a in t.actions() {
                let Action::FunctionCall(fc) = a else {
                    return Err(InvalidTxError::InvalidAccessKeyError(
                        InvalidAccessKeyError::RequiresFullAccess,
                    ));
                };
                if !fc.deposit.is_zero() {
                    return Err(InvalidTxError::InvalidAccessKeyError(
                        InvalidAccessKeyError::DepositWithFunctionCall,
                    ));
                }
                if t.receiver_id().as_str() != perm.receiver_id {
                    return Err(InvalidTxError::InvalidAccessKeyError(
                        InvalidAccessKeyError::ReceiverMismatch {
                            tx_receiver: t.receiver_id().clone(),
                            ak_receiver: perm.receiver_id.clone(),
                        },
                    ));
                }
                if !perm.method_names.is_empty() && !perm.method_names.contains(&fc.method_name) {
                    return Err(InvalidTxError::InvalidAccessKeyError(
                        InvalidAccessKeyError::MethodNameMismatch {
                            method_name: fc.method_name.clone(),
                        },
                    ));
                }
            }
        }
        if account.amount < total {
            return Err(InvalidTxError::NotEnoughBalance {
                signer_id: signer_id.clone(),
                balance: Balance::from_yoctonear(account.amount),
                cost: Balance::from_yoctonear(total),
            });
        }
        account.amount -= total;
        if let Some(required) = self.storage_shortfall(&account) {
            return Err(InvalidTxError::LackBalanceForState {
                signer_id: signer_id.clone(),
                amount: Balance::from_yoctonear(required),
            });
        }
        access_key.nonce = nonce;
        Ok(Charge {
            account,
            access_key,
            burnt,
        })
    }

    /// Checks a transaction against the current state without changing anything.
    pub fn validate_tx(
        &self,
        state: &State,
        tx: &VerifiedTx,
        height: u64,
    ) -> Result<(), InvalidTxError> {
        self.check_tx(state, tx, height).map(|_| ())
    }

    /// Checks and charges a transaction and turns it into its receipt.
    pub fn apply_tx(
        &self,
        state: &mut State,
        tx: &VerifiedTx,
        ctx: &BlockContext,
    ) -> Result<(Receipt, ExecutionOutcomeView), InvalidTxError> {
        let charge = self.check_tx(state, tx, ctx.height)?;
        let tx = &tx.0;
        let t = &tx.transaction;
        let signer_id = t.signer_id().clone();
        state.set_account(&signer_id, &charge.account);
        state.set_access_key(&signer_id, t.public_key(), &charge.access_key);
        state.commit_receipt();
        let receipt_id = create_receipt_id_from_transaction(&tx.get_hash(), ctx.height);
        let receipt = Receipt {
            id: receipt_id,
            predecessor_id: signer_id.clone(),
            receiver_id: t.receiver_id().clone(),
            body: ReceiptBody::Action(ActionReceipt {
                signer_id: signer_id.clone(),
                signer_public_key: t.public_key().clone(),
                gas_price: GAS_PRICE,
                output_data_receivers: vec![],
                input_data_ids: vec![],
                actions: t.actions().to_vec(),
                is_promise_yield: false,
                refund_to: None,
            }),
        };
        let out = outcome(
            signer_id,
            vec![],
            vec![receipt_id],
            charge.burnt,
            GAS_PRICE,
            ExecutionStatusView::SuccessReceiptId(receipt_id),
        );
        Ok((receipt, out))
    }

    /// Data receipts for yields whose timeout has come.
    pub fn expired_yields(&self, state: &mut State, ctx: &BlockContext) -> Vec<Receipt> {
        let mut out = Vec::new();
        let end = yield_queue_key(ctx.height.saturating_add(1), &CryptoHash::default());
        for (key, _) in state.scan_range(&[COL_YIELD_QUEUE], &end) {
            if key.len() != 1 + 8 + 32 {
                state.remove(&key);
                continue;
            }
            let mut h = [0u8; 8];
            h.copy_from_slice(&key[1..9]);
            if u64::from_be_bytes(h) > ctx.height {
                break;
            }
            let data_id = CryptoHash::try_from(&key[9..]).unwrap_or_default();
            state.remove(&key);
            let ykey = hash_key(COL_YIELD, &data_id);
            if let Some(entry) = state.get_borsh::<YieldEntry>(&ykey) {
                state.remove(&ykey);
                let id = create_receipt_id_from_receipt_id(&data_id, ctx.height, 0);
                out.push(Receipt {
                    id,
                    predecessor_id: entry.account_id.clone(),
                    receiver_id: entry.account_id,
                    body: ReceiptBody::Data {
                        data_id,
                        data: None,
                        is_promise_resume: true,
                    },
                });
            }
        }
        state.commit_receipt();
        out
    }

    /// Applies one receipt; receipts that become ready in this block are pushed on `local`.
    pub fn apply_receipt(
        &self,
        state: &mut State,
        receipt: Receipt,
        ctx: &BlockContext,
        out: &mut ApplyOutput,
        local: &mut VecDeque<Receipt>,
    ) {
        match &receipt.body {
            ReceiptBody::Data { data_id, data, .. } => {
                state.set_borsh(hash_key(COL_RECEIVED_DATA, data_id), data);
                let waiter_key = hash_key(COL_DATA_WAITER, data_id);
                if let Some(waiting) = state.get_borsh::<CryptoHash>(&waiter_key) {
                    state.remove(&waiter_key);
                    let count_key = hash_key(COL_PENDING_COUNT, &waiting);
                    let left = state
                        .get_borsh::<u32>(&count_key)
                        .unwrap_or(1)
                        .saturating_sub(1);
                    if left == 0 {
                        state.remove(&count_key);
                        let pkey = hash_key(COL_POSTPONED, &waiting);
                        if let Some(r) = state.get_borsh::<Receipt>(&pkey) {
                            state.remove(&pkey);
                            local.push_back(r);
                        }
                    } else {
                        state.set_borsh(count_key, &left);
                    }
                }
                state.commit_receipt();
            }
            ReceiptBody::Action(a) => {
                let missing: Vec<CryptoHash> = a
                    .input_data_ids
                    .iter()
                    .filter(|d| state.get(&hash_key(COL_RECEIVED_DATA, d)).is_none())
                    .copied()
                    .collect();
                if !missing.is_empty() {
                    for d in &missing {
                        state.set_borsh(hash_key(COL_DATA_WAITER, d), &receipt.id);
                    }
                    state.set_borsh(
                        hash_key(COL_PENDING_COUNT, &receipt.id),
                        &(missing.len() as u32),
                    );
                    state.set_borsh(hash_key(COL_POSTPONED, &receipt.id), &receipt);
                    state.commit_receipt();
                    return;
                }
                let mut results = Vec::with_capacity(a.input_data_ids.len());
                for d in &a.input_data_ids {
                    let key = hash_key(COL_RECEIVED_DATA, d);
                    let data: Option<Vec<u8>> = state.get_borsh(&key).unwrap_or(None);
                    state.remove(&key);
                    results.push(match data {
                        Some(v) => PromiseResult::Successful(v.into()),
                        None => PromiseResult::Failed,
                    });
                }
                state.commit_receipt();
                self.execute_action_receipt(state, &receipt, a, results, ctx, out);
            }
        }
    }

    fn execute_action_receipt(
        &self,
        state: &mut State,
        receipt: &Receipt,
        a: &ActionReceipt,
        promise_results: Vec<PromiseResult>,
        ctx: &BlockContext,
        out: &mut ApplyOutput,
    ) {
        let fees = &self.config.fees;
        let account_id = &receipt.receiver_id;
        let mut gas_burnt = receipt_exec_base(fees);
        let mut gas_used = gas_burnt;
        let mut logs = Vec::new();
        let mut new_receipts: Vec<NewReceipt> = Vec::new();
        let mut resumes: Vec<(CryptoHash, Vec<u8>)> = Vec::new();
        let mut return_data = ReturnData::None;
        let mut error: Option<ActionError> = None;
        let mut account = state.account(account_id);
        let promise_results: Arc<[PromiseResult]> = promise_results.into();
        let actor_ok = receipt.predecessor_id == *account_id
            || matches!(a.actions.first(), Some(Action::CreateAccount(_)));
        let not_exist = || ActionErrorKind::AccountDoesNotExist {
            account_id: account_id.clone(),
        };
        let no_permission = || ActionErrorKind::ActorNoPermission {
            account_id: account_id.clone(),
            actor_id: receipt.predecessor_id.clone(),
        };

        for (i, action) in a.actions.iter().enumerate() {
            let (_, exec, _) = action_gas(fees, action, false);
            gas_burnt = gas_burnt.saturating_add(exec);
            gas_used = gas_used.saturating_add(exec);
            let result: Result<(), ActionErrorKind> = match action {
                Action::CreateAccount(_) => {
                    if account.is_some() {
                        Err(ActionErrorKind::AccountAlreadyExists {
                            account_id: account_id.clone(),
                        })
                    } else if !(account_id.is_sub_account_of(&receipt.predecessor_id)
                        || account_id.is_top_level() && account_id.len() >= 32)
                    {
                        if account_id.is_top_level() {
                            Err(ActionErrorKind::CreateAccountOnlyByRegistrar {
                                account_id: account_id.clone(),
                                registrar_account_id: "registrar".parse().expect("valid id"),
                                predecessor_id: receipt.predecessor_id.clone(),
                            })
                        } else {
                            Err(ActionErrorKind::CreateAccountNotAllowed {
                                account_id: account_id.clone(),
                                predecessor_id: receipt.predecessor_id.clone(),
                            })
                        }
                    } else {
                        account = Some(AccountRecord {
                            amount: 0,
                            locked: 0,
                            code_hash: CryptoHash::default(),
                            storage_usage: self.new_account_storage(),
                        });
                        Ok(())
                    }
                }
                Action::Transfer(t) => match account.as_mut() {
                    Some(acc) => {
                        acc.amount = acc.amount.saturating_add(t.deposit.as_yoctonear());
                        Ok(())
                    }
                    None => Err(not_exist()),
                },
                Action::DeployContract(d) => match account.as_mut() {
                    None => Err(not_exist()),
                    Some(_) if !actor_ok => Err(no_permission()),
                    Some(acc) => {
                        let old = state.code(account_id).map(|c| c.len() as u64).unwrap_or(0);
                        acc.storage_usage =
                            acc.storage_usage.saturating_sub(old) + d.code.len() as u64;
                        acc.code_hash = hash(&d.code);
                        state.set(code_key(account_id), d.code.clone());
                        Ok(())
                    }
                },
                Action::AddKey(add) => match account.as_mut() {
                    None => Err(not_exist()),
                    Some(_) if !actor_ok => Err(no_permission()),
                    Some(acc) => {
                        if state.access_key(account_id, &add.public_key).is_some() {
                            Err(ActionErrorKind::AddKeyAlreadyExists {
                                account_id: account_id.clone(),
                                public_key: Box::new(add.public_key.clone()),
                            })
                        } else {
                            let mut ak = add.access_key.clone();
                            ak.nonce = ctx
                                .height
                                .saturating_sub(1)
                                .saturating_mul(AccessKey::ACCESS_KEY_NONCE_RANGE_MULTIPLIER);
                            acc.storage_usage += self.access_key_storage(&add.public_key, &ak);
                            state.set_access_key(account_id, &add.public_key, &ak);
                            Ok(())
                        }
                    }
                },
                Action::DeleteKey(del) => match account.as_mut() {
                    None => Err(not_exist()),
                    Some(_) if !actor_ok => Err(no_permission()),
                    Some(acc) => match state.access_key(account_id, &del.public_key) {
                        None => Err(ActionErrorKind::DeleteKeyDoesNotExist {
                            account_id: account_id.clone(),
                            public_key: Box::new(del.public_key.clone()),
                        }),
                        Some(ak) => {
                            acc.storage_usage = acc
                                .storage_usage
                                .saturating_sub(self.access_key_storage(&del.public_key, &ak));
                            state.remove(&access_key_key(account_id, &del.public_key));
                            Ok(())
                        }
                    },
                },
                Action::DeleteAccount(del) => match account.as_ref() {
                    None => Err(not_exist()),
                    Some(_) if !actor_ok => Err(no_permission()),
                    Some(acc) => {
                        let balance = acc.amount;
                        state.delete_account(account_id);
                        account = None;
                        if balance > 0 {
                            new_receipts.push(NewReceipt {
                                receiver_id: del.beneficiary_id.clone(),
                                actions: vec![Action::Transfer(
                                    near_primitives::action::TransferAction {
                                        deposit: Balance::from_yoctonear(balance),
                                    },
                                )],
                                gas_weights: vec![],
                                input_data_ids: vec![],
                                output_data_receivers: vec![],
                                is_promise_yield: false,
                                refund_to: None,
                            });
                        }
                        Ok(())
                    }
                },
                Action::FunctionCall(fc) => match account.as_mut() {
                    None => Err(not_exist()),
                    Some(acc) => {
                        let action_hash =
                            create_action_hash_from_receipt_id(&receipt.id, ctx.height, i);
                        let is_last = i + 1 == a.actions.len();
                        let r = self.function_call(
                            state,
                            receipt,
                            a,
                            acc,
                            fc,
                            action_hash,
                            is_last,
                            promise_results.clone(),
                            ctx,
                        );
                        gas_burnt = gas_burnt.saturating_add(r.burnt);
                        gas_used = gas_used.saturating_add(r.used);
                        logs.extend(r.logs);
                        match r.error {
                            Some(e) => Err(e),
                            None => {
                                let offset = new_receipts.len();
                                new_receipts.extend(r.receipts);
                                resumes.extend(r.resumes);
                                return_data = match r.return_data {
                                    ReturnData::ReceiptIndex(j) => {
                                        ReturnData::ReceiptIndex(j + offset as u64)
                                    }
                                    other => other,
                                };
                                Ok(())
                            }
                        }
                    }
                },
                other => Err(ActionErrorKind::FunctionCallError(
                    FunctionCallError::ExecutionError(format!(
                        "action {other:?} is not supported by the devnet"
                    )),
                )),
            };
            if let Err(kind) = result {
                error = Some(ActionError {
                    index: Some(i as u64),
                    kind,
                });
                break;
            }
        }

        if error.is_none() {
            if let Some(acc) = &account {
                if let Some(required) = self.storage_shortfall(acc) {
                    error = Some(ActionError {
                        index: None,
                        kind: ActionErrorKind::LackBalanceForState {
                            account_id: account_id.clone(),
                            amount: Balance::from_yoctonear(required),
                        },
                    });
                }
            }
        }

        if error.is_none() {
            if let Some(acc) = &account {
                state.set_account(account_id, acc);
            }
            state.commit_receipt();
        } else {
            state.rollback_receipt();
            new_receipts.clear();
            resumes.clear();
            gas_used = gas_burnt;
        }

        let mut index = 0usize;
        let mut next_id = || {
            let id = create_receipt_id_from_receipt_id(&receipt.id, ctx.height, index);
            index += 1;
            id
        };
        let ids: Vec<CryptoHash> = new_receipts.iter().map(|_| next_id()).collect();
        let (status, data) = match (&error, return_data) {
            (Some(e), _) => (
                ExecutionStatusView::Failure(TxExecutionError::ActionError(e.clone())),
                None,
            ),
            (None, ReturnData::ReceiptIndex(j)) => match new_receipts.get_mut(j as usize) {
                Some(r) => {
                    r.output_data_receivers
                        .extend(a.output_data_receivers.iter().cloned());
                    (ExecutionStatusView::SuccessReceiptId(ids[j as usize]), None)
                }
                None => (ExecutionStatusView::SuccessValue(vec![]), Some(vec![])),
            },
            (None, ReturnData::Value(v)) => (ExecutionStatusView::SuccessValue(v.clone()), Some(v)),
            (None, ReturnData::None) => (ExecutionStatusView::SuccessValue(vec![]), Some(vec![])),
        };
        let forwarded = matches!(status, ExecutionStatusView::SuccessReceiptId(_));
        if !forwarded {
            for (data_id, receiver) in &a.output_data_receivers {
                out.outgoing.push(Receipt {
                    id: next_id(),
                    predecessor_id: account_id.clone(),
                    receiver_id: receiver.clone(),
                    body: ReceiptBody::Data {
                        data_id: *data_id,
                        data: data.clone(),
                        is_promise_resume: false,
                    },
                });
            }
        }
        for (data_id, payload) in resumes {
            out.outgoing.push(Receipt {
                id: next_id(),
                predecessor_id: account_id.clone(),
                receiver_id: account_id.clone(),
                body: ReceiptBody::Data {
                    data_id,
                    data: Some(payload),
                    is_promise_resume: true,
                },
            });
        }
        let mut receipt_ids = ids.clone();
        for (nr, id) in new_receipts.into_iter().zip(ids) {
            let r = Receipt {
                id,
                predecessor_id: account_id.clone(),
                receiver_id: nr.receiver_id,
                body: ReceiptBody::Action(ActionReceipt {
                    signer_id: a.signer_id.clone(),
                    signer_public_key: a.signer_public_key.clone(),
                    gas_price: a.gas_price,
                    output_data_receivers: nr.output_data_receivers,
                    input_data_ids: nr.input_data_ids,
                    actions: nr.actions,
                    is_promise_yield: nr.is_promise_yield,
                    refund_to: nr.refund_to,
                }),
            };
            out.created.push(r.clone());
            out.outgoing.push(r);
        }

        // Refunds: deposits back on failure, unused gas back to the signer.
        if !receipt.is_refund() {
            let system: AccountId = SYSTEM_ACCOUNT.parse().expect("valid id");
            let mut refund = |to: AccountId, amount: u128, signer: AccountId| {
                let id = next_id();
                receipt_ids.push(id);
                let r = Receipt {
                    id,
                    predecessor_id: system.clone(),
                    receiver_id: to,
                    body: ReceiptBody::Action(ActionReceipt {
                        signer_id: signer,
                        signer_public_key: a.signer_public_key.clone(),
                        gas_price: 0,
                        output_data_receivers: vec![],
                        input_data_ids: vec![],
                        actions: vec![Action::Transfer(near_primitives::action::TransferAction {
                            deposit: Balance::from_yoctonear(amount),
                        })],
                        is_promise_yield: false,
                        refund_to: None,
                    }),
                };
                out.created.push(r.clone());
                out.outgoing.push(r);
            };
            if error.is_some() {
                let deposit = total_deposit(&a.actions);
                if deposit > 0 {
                    let to = a
                        .refund_to
                        .clone()
                        .unwrap_or_else(|| receipt.predecessor_id.clone());
                    refund(to, deposit, system.clone());
                }
            }
            let (_, prepaid) = receipt_gas(fees, &a.actions, false);
            let unused = prepaid.saturating_sub(gas_used);
            if unused > 0 && a.gas_price > 0 {
                let amount = (unused as u128).saturating_mul(a.gas_price);
                refund(a.signer_id.clone(), amount, a.signer_id.clone());
            }
        }

        out.outcomes.push((
            receipt.id,
            outcome(
                account_id.clone(),
                logs,
                receipt_ids,
                gas_burnt,
                a.gas_price,
                status,
            ),
        ));
    }

    #[allow(clippy::too_many_arguments)]
    fn function_call(
        &self,
        state: &mut State,
        receipt: &Receipt,
        a: &ActionReceipt,
        account: &mut AccountRecord,
        fc: &near_primitives::action::FunctionCallAction,
        action_hash: CryptoHash,
        is_last: bool,
        promise_results: Arc<[PromiseResult]>,
        ctx: &BlockContext,
    ) -> CallResult {
        let account_id = &receipt.receiver_id;
        if state.get(&code_key(account_id)).is_none() {
            return CallResult::failed(ActionErrorKind::FunctionCallError(
                FunctionCallError::CompilationError(CompilationError::CodeDoesNotExist {
                    account_id: account_id.clone(),
                }),
            ));
        }
        let context = VMContext {
            current_account_id: account_id.clone(),
            signer_account_id: a.signer_id.clone(),
            signer_account_pk: borsh::to_vec(&a.signer_public_key).unwrap_or_default(),
            predecessor_account_id: receipt.predecessor_id.clone(),
            refund_to_account_id: a
                .refund_to
                .clone()
                .unwrap_or_else(|| receipt.predecessor_id.clone()),
            input: fc.args.clone().into(),
            promise_results,
            block_height: ctx.height,
            block_timestamp: ctx.timestamp_ns,
            epoch_height: 1,
            account_balance: Balance::from_yoctonear(account.amount),
            account_locked_balance: Balance::from_yoctonear(account.locked),
            storage_usage: account.storage_usage,
            account_contract: AccountContract::Local(account.code_hash),
            attached_deposit: fc.deposit,
            prepaid_gas: fc.gas,
            random_seed: create_random_seed(action_hash, ctx.random_seed),
            view_config: None,
            output_data_receivers: if is_last {
                a.output_data_receivers
                    .iter()
                    .map(|(_, r)| r.clone())
                    .collect()
            } else {
                vec![]
            },
        };
        let run = self.run_vm(
            state,
            account.code_hash,
            &fc.method_name,
            &context,
            action_hash,
        );
        let (vm, receipts, resumes, unsupported) = match run {
            Ok(r) => r,
            Err(msg) => {
                return CallResult::failed(ActionErrorKind::FunctionCallError(
                    FunctionCallError::ExecutionError(msg),
                ))
            }
        };
        let mut result = CallResult {
            burnt: vm.burnt_gas.as_gas(),
            used: vm.used_gas.as_gas(),
            logs: vm.logs,
            receipts,
            resumes,
            return_data: vm.return_data,
            error: None,
        };
        if let Some(e) = vm.aborted {
            result.used = result.burnt;
            result.error = Some(ActionErrorKind::FunctionCallError(fc_error(e)));
            return result;
        }
        if let Some(msg) = unsupported {
            result.used = result.burnt;
            result.error = Some(ActionErrorKind::FunctionCallError(
                FunctionCallError::ExecutionError(msg),
            ));
            return result;
        }
        account.amount = vm.balance.as_yoctonear();
        account.storage_usage = vm.storage_usage;
        // Share the unused gas among function calls created with a gas weight.
        let unused = fc.gas.as_gas().saturating_sub(result.used);
        let total_weight: u128 = result
            .receipts
            .iter()
            .flat_map(|r| r.gas_weights.iter())
            .map(|(_, w)| *w as u128)
            .sum();
        if unused > 0 && total_weight > 0 {
            let mut given = 0u64;
            let slots: Vec<(usize, usize, u64)> = result
                .receipts
                .iter()
                .enumerate()
                .flat_map(|(ri, r)| r.gas_weights.iter().map(move |(ai, w)| (ri, *ai, *w)))
                .collect();
            let last = slots.len().saturating_sub(1);
            for (n, (ri, ai, w)) in slots.into_iter().enumerate() {
                let extra = if n == last {
                    unused - given
                } else {
                    ((unused as u128 * w as u128) / total_weight) as u64
                };
                given += extra;
                if let Some(Action::FunctionCall(f)) = result
                    .receipts
                    .get_mut(ri)
                    .and_then(|r| r.actions.get_mut(ai))
                {
                    f.gas = Gas::from_gas(f.gas.as_gas().saturating_add(extra));
                }
            }
            result.used = result.used.saturating_add(unused);
        }
        result
    }

    #[allow(clippy::type_complexity)]
    fn run_vm(
        &self,
        state: &mut State,
        code_hash: CryptoHash,
        method: &str,
        context: &VMContext,
        action_hash: CryptoHash,
    ) -> Result<
        (
            near_vm_runner::logic::VMOutcome,
            Vec<NewReceipt>,
            Vec<(CryptoHash, Vec<u8>)>,
            Option<String>,
        ),
        String,
    > {
        let wasm_config = self.config.wasm_config.clone();
        let contract = StoredContract {
            hash: code_hash,
            account: &context.current_account_id,
            state: &*state,
        };
        let max_gas_burnt = match &context.view_config {
            Some(v) => v.max_gas_burnt,
            None => wasm_config.limit_config.max_gas_burnt,
        };
        let gas_counter = GasCounter::new(
            wasm_config.ext_costs.clone(),
            max_gas_burnt,
            wasm_config.regular_op_cost,
            context.prepaid_gas,
            context.is_view(),
        );
        let prepared = near_vm_runner::prepare(
            &contract,
            wasm_config,
            Some(&self.cache),
            gas_counter,
            method,
        );
        let mut ext = DevnetExt::new(
            state,
            context.current_account_id.clone(),
            action_hash,
            context.block_height,
            self.yield_timeout(),
            self.chain_id.clone(),
        );
        let vm = near_vm_runner::run(prepared, &mut ext, context, self.config.fees.clone())
            .map_err(|e| format!("vm runner error: {e:?}"))?;
        let DevnetExt {
            receipts,
            resumes,
            unsupported,
            ..
        } = ext;
        Ok((vm, receipts, resumes, unsupported))
    }

    /// Runs a view method against the current state; nothing it does is kept.
    pub fn view_call(
        &self,
        state: &mut State,
        account_id: &AccountId,
        method: &str,
        args: Vec<u8>,
        ctx: &BlockContext,
    ) -> Result<(Vec<u8>, Vec<String>), ViewCallError> {
        let account = state
            .account(account_id)
            .ok_or(ViewCallError::UnknownAccount)?;
        if state.get(&code_key(account_id)).is_none() {
            return Err(ViewCallError::NoContractCode);
        }
        let limit = self.config.wasm_config.limit_config.max_gas_burnt;
        let context = VMContext {
            current_account_id: account_id.clone(),
            signer_account_id: account_id.clone(),
            signer_account_pk: vec![],
            predecessor_account_id: account_id.clone(),
            refund_to_account_id: account_id.clone(),
            input: args.into(),
            promise_results: Vec::new().into(),
            block_height: ctx.height,
            block_timestamp: ctx.timestamp_ns,
            epoch_height: 1,
            account_balance: Balance::from_yoctonear(account.amount),
            account_locked_balance: Balance::from_yoctonear(account.locked),
            storage_usage: account.storage_usage,
            account_contract: AccountContract::Local(account.code_hash),
            attached_deposit: Balance::ZERO,
            prepaid_gas: limit,
            random_seed: ctx.random_seed.as_ref().to_vec(),
            view_config: Some(ViewConfig {
                max_gas_burnt: limit,
            }),
            output_data_receivers: vec![],
        };
        let action_hash = hash(method.as_bytes());
        let run = self.run_vm(state, account.code_hash, method, &context, action_hash);
        state.rollback_receipt();
        let (vm, _, _, _) = run.map_err(|msg| ViewCallError::Failed {
            error: FunctionCallError::ExecutionError(msg),
            logs: vec![],
        })?;
        if let Some(e) = vm.aborted {
            return Err(ViewCallError::Failed {
                error: fc_error(e),
                logs: vm.logs,
            });
        }
        let result = match vm.return_data {
            ReturnData::Value(v) => v,
            _ => vec![],
        };
        Ok((result, vm.logs))
    }
}

struct CallResult {
    burnt: u64,
    used: u64,
    logs: Vec<String>,
    receipts: Vec<NewReceipt>,
    resumes: Vec<(CryptoHash, Vec<u8>)>,
    return_data: ReturnData,
    error: Option<ActionErrorKind>,
}

impl CallResult {
    fn failed(kind: ActionErrorKind) -> Self {
        CallResult {
            burnt: 0,
            used: 0,
            logs: vec![],
            receipts: vec![],
            resumes: vec![],
            return_data: ReturnData::None,
            error: Some(kind),
        }
    }
}

/// A deployed contract whose code is read from the state only if the compile cache misses.
struct StoredContract<'a> {
    hash: CryptoHash,
    account: &'a AccountId,
    state: &'a State,
}

impl near_vm_runner::Contract for StoredContract<'_> {
    fn hash(&self) -> CryptoHash {
        self.hash
    }
    fn get_code(&self) -> Option<Arc<ContractCode>> {
        let code = self.state.code(self.account)?;
        Some(Arc::new(ContractCode::new(code, Some(self.hash))))
    }
}
