//! `near_vm_runner::logic::External` over the devnet state: contract storage, and the receipts
//! (promises, yields and resumes) a contract call creates.

use near_crypto::PublicKey;
use near_primitives::account::{AccessKey, AccessKeyPermission, FunctionCallPermission};
use near_primitives::action::{
    Action, AddKeyAction, CreateAccountAction, DeleteAccountAction, DeleteKeyAction,
    DeployContractAction, FunctionCallAction, StakeAction, TransferAction,
};
use near_primitives::hash::{hash, CryptoHash};
use near_primitives::types::{AccountId, Balance, Gas};
use near_primitives_core::hash::YieldId;
use near_primitives_core::types::{GasWeight, Nonce, NonceIndex};
use near_primitives_core::universal_state_init::{
    DecodeMode, RawStateInit, StateInitError, UniversalStateInitCounts,
};
use near_vm_runner::logic::errors::{HostError, VMLogicError};
use near_vm_runner::logic::types::{
    ActionIndex, GlobalContractDeployMode, GlobalContractIdentifier, ReceiptIndex,
};
use near_vm_runner::logic::{External, StorageAccessTracker, ValuePtr};

use crate::state::{data_key, hash_key, yield_queue_key, State, YieldEntry, COL_YIELD};

type Result<T, E = VMLogicError> = std::result::Result<T, E>;

/// A receipt created by a contract call, before it gets its id.
#[derive(Debug, Clone)]
pub struct NewReceipt {
    pub receiver_id: AccountId,
    pub actions: Vec<Action>,
    /// (action index, weight) of function calls that share the call's unused gas.
    pub gas_weights: Vec<(usize, u64)>,
    pub input_data_ids: Vec<CryptoHash>,
    pub output_data_receivers: Vec<(CryptoHash, AccountId)>,
    pub is_promise_yield: bool,
    pub refund_to: Option<AccountId>,
}

struct Value(Vec<u8>);

impl ValuePtr for Value {
    fn len(&self) -> u32 {
        self.0.len() as u32
    }
    fn deref(&self, _: &mut dyn StorageAccessTracker) -> Result<Vec<u8>> {
        Ok(self.0.clone())
    }
}

pub struct DevnetExt<'a> {
    state: &'a mut State,
    account_id: AccountId,
    action_hash: CryptoHash,
    height: u64,
    data_count: u64,
    yield_timeout: u64,
    chain_id: String,
    pub receipts: Vec<NewReceipt>,
    /// Data receipts for yields resumed by this call: (data_id, payload).
    pub resumes: Vec<(CryptoHash, Vec<u8>)>,
    /// Set when the contract used a host feature the devnet does not implement.
    pub unsupported: Option<String>,
}

impl<'a> DevnetExt<'a> {
    pub fn new(
        state: &'a mut State,
        account_id: AccountId,
        action_hash: CryptoHash,
        height: u64,
        yield_timeout: u64,
        chain_id: String,
    ) -> Self {
        DevnetExt {
            state,
            account_id,
            action_hash,
            height,
            data_count: 0,
            yield_timeout,
            chain_id,
            receipts: Vec::new(),
            resumes: Vec::new(),
            unsupported: None,
        }
    }

    fn push_action(&mut self, index: ReceiptIndex, action: Action) -> Option<usize> {
        let r = self.receipts.get_mut(index as usize)?;
        r.actions.push(action);
        Some(r.actions.len() - 1)
    }

    fn unsupported(&mut self, what: &str) {
        if self.unsupported.is_none() {
            self.unsupported = Some(format!("{what} is not supported by the devnet"));
        }
    }

    fn new_receipt(&mut self, receiver_id: AccountId) -> usize {
        self.receipts.push(NewReceipt {
            receiver_id,
            actions: Vec::new(),
            gas_weights: Vec::new(),
            input_data_ids: Vec::new(),
            output_data_receivers: Vec::new(),
            is_promise_yield: false,
            refund_to: None,
        });
        self.receipts.len() - 1
    }
}

fn method_names(names: Vec<Vec<u8>>) -> Result<Vec<String>> {
    names
        .into_iter()
        .map(|n| String::from_utf8(n).map_err(|_| VMLogicError::HostError(HostError::BadUTF8)))
        .collect()
}

impl External for DevnetExt<'_> {
    fn storage_set(
        &mut self,
        _: &mut dyn StorageAccessTracker,
        key: &[u8],
        value: &[u8],
    ) -> Result<Option<Vec<u8>>> {
        let k = data_key(&self.account_id, key);
        let old = self.state.get(&k).map(|v| v.to_vec());
        self.state.set(k, value.to_vec());
        Ok(old)
    }

    fn storage_get<'b>(
        &'b self,
        _: &mut dyn StorageAccessTracker,
        key: &[u8],
    ) -> Result<Option<Box<dyn ValuePtr + 'b>>> {
        let k = data_key(&self.account_id, key);
        Ok(self
            .state
            .get(&k)
            .map(|v| Box::new(Value(v.to_vec())) as Box<dyn ValuePtr>))
    }

    fn storage_remove(
        &mut self,
        _: &mut dyn StorageAccessTracker,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>> {
        let k = data_key(&self.account_id, key);
        let old = self.state.get(&k).map(|v| v.to_vec());
        if old.is_some() {
            self.state.remove(&k);
        }
        Ok(old)
    }

    fn storage_has_key(&mut self, _: &mut dyn StorageAccessTracker, key: &[u8]) -> Result<bool> {
        Ok(self.state.get(&data_key(&self.account_id, key)).is_some())
    }

    fn generate_data_id(&mut self) -> CryptoHash {
        let mut buf = Vec::with_capacity(48);
        buf.extend_from_slice(b"devnet-data-id");
        buf.extend_from_slice(self.action_hash.as_ref());
        buf.extend_from_slice(&self.height.to_le_bytes());
        buf.extend_from_slice(&self.data_count.to_le_bytes());
        self.data_count += 1;
        hash(&buf)
    }

    fn get_recorded_storage_size(&self) -> usize {
        0
    }

    fn storage_proof_size_before_receipt(&self) -> usize {
        0
    }

    fn validator_stake(&self, _account_id: &AccountId) -> Result<Option<Balance>> {
        Ok(None)
    }

    fn validator_total_stake(&self) -> Result<Balance> {
        Ok(Balance::ZERO)
    }

    fn chain_id(&self) -> String {
        self.chain_id.clone()
    }

    fn create_action_receipt(
        &mut self,
        receipt_indices: Vec<ReceiptIndex>,
        receiver_id: AccountId,
    ) -> Result<ReceiptIndex> {
        for &i in &receipt_indices {
            if i as usize >= self.receipts.len() {
                return Err(HostError::InvalidReceiptIndex { receipt_index: i }.into());
            }
        }
        let mut input_data_ids = Vec::with_capacity(receipt_indices.len());
        for i in receipt_indices {
            let data_id = self.generate_data_id();
            self.receipts[i as usize]
                .output_data_receivers
                .push((data_id, receiver_id.clone()));
            input_data_ids.push(data_id);
        }
        let index = self.new_receipt(receiver_id);
        self.receipts[index].input_data_ids = input_data_ids;
        Ok(index as ReceiptIndex)
    }

    fn create_promise_yield_receipt(
        &mut self,
        receiver_id: AccountId,
    ) -> Result<(ReceiptIndex, CryptoHash)> {
        let data_id = self.generate_data_id();
        let index = self.new_receipt(receiver_id);
        self.receipts[index].input_data_ids.push(data_id);
        self.receipts[index].is_promise_yield = true;
        let expires_at = self.height + self.yield_timeout;
        let entry = YieldEntry {
            account_id: self.account_id.clone(),
            expires_at,
        };
        self.state.set_borsh(hash_key(COL_YIELD, &data_id), &entry);
        self.state
            .set(yield_queue_key(expires_at, &data_id), Vec::new());
        Ok((index as ReceiptIndex, data_id))
    }

    fn create_promise_yield_receipt_with_id(
        &mut self,
        _receiver_id: AccountId,
        _user_yield_id: YieldId,
    ) -> Result<Option<(ReceiptIndex, CryptoHash)>> {
        self.unsupported("promise_yield_create_with_id");
        Err(HostError::ProhibitedInView {
            method_name: "promise_yield_create_with_id".into(),
        }
        .into())
    }

    fn submit_promise_resume_data(&mut self, data_id: CryptoHash, data: Vec<u8>) -> Result<bool> {
        let key = hash_key(COL_YIELD, &data_id);
        let Some(entry) = self.state.get_borsh::<YieldEntry>(&key) else {
            return Ok(false);
        };
        if entry.account_id != self.account_id {
            return Ok(false);
        }
        self.state.remove(&key);
        self.state
            .remove(&yield_queue_key(entry.expires_at, &data_id));
        self.resumes.push((data_id, data));
        Ok(true)
    }

    fn submit_promise_resume_data_with_yield_id(
        &mut self,
        _user_yield_id: YieldId,
        _data: Vec<u8>,
    ) -> Result<bool> {
        self.unsupported("promise_yield_resume_with_yield_id");
        Ok(false)
    }

    fn append_action_create_account(&mut self, receipt_index: ReceiptIndex) {
        self.push_action(receipt_index, Action::CreateAccount(CreateAccountAction {}));
    }

    fn append_action_deploy_contract(&mut self, receipt_index: ReceiptIndex, code: Vec<u8>) {
        self.push_action(
            receipt_index,
            Action::DeployContract(DeployContractAction { code }),
        );
    }

    fn append_action_deploy_global_contract(
        &mut self,
        _receipt_index: ReceiptIndex,
        _code: Vec<u8>,
        _mode: GlobalContractDeployMode,
    ) {
        self.unsupported("global contracts");
    }

    fn append_action_use_global_contract(
        &mut self,
        _receipt_index: ReceiptIndex,
        _contract_id: GlobalContractIdentifier,
    ) {
        self.unsupported("global contracts");
    }

    fn append_action_deterministic_state_init(
        &mut self,
        _receipt_index: ReceiptIndex,
        _contract_id: GlobalContractIdentifier,
        _amount: Balance,
    ) -> ActionIndex {
        self.unsupported("deterministic state init");
        0
    }

    fn set_deterministic_state_init_data_entry(
        &mut self,
        _receipt_index: ReceiptIndex,
        _action_index: ActionIndex,
        _key: Vec<u8>,
        _value: Vec<u8>,
    ) -> Result<()> {
        self.unsupported("deterministic state init");
        Ok(())
    }

    fn check_state_init(&self, _state_init: &RawStateInit) -> Result<(), StateInitError> {
        Ok(())
    }

    fn state_init_send_counts(
        &self,
        state_init: &RawStateInit,
        _mode: DecodeMode,
    ) -> UniversalStateInitCounts {
        UniversalStateInitCounts {
            num_bytes: state_init.0.len() as u64,
            num_entries: 0,
            num_keys: 0,
        }
    }

    fn append_action_universal_state_init(
        &mut self,
        _receipt_index: ReceiptIndex,
        _state_init: RawStateInit,
        _amount: Balance,
    ) {
        self.unsupported("universal state init");
    }

    fn append_action_function_call_weight(
        &mut self,
        receipt_index: ReceiptIndex,
        method_name: Vec<u8>,
        args: Vec<u8>,
        attached_deposit: Balance,
        prepaid_gas: Gas,
        gas_weight: GasWeight,
    ) -> Result<()> {
        let method_name =
            String::from_utf8(method_name).map_err(|_| HostError::InvalidMethodName)?;
        let action = Action::FunctionCall(Box::new(FunctionCallAction {
            method_name,
            args,
            gas: prepaid_gas,
            deposit: attached_deposit,
        }));
        if let Some(action_index) = self.push_action(receipt_index, action) {
            if gas_weight.0 > 0 {
                if let Some(r) = self.receipts.get_mut(receipt_index as usize) {
                    r.gas_weights.push((action_index, gas_weight.0));
                }
            }
        }
        Ok(())
    }

    fn append_action_transfer(&mut self, receipt_index: ReceiptIndex, deposit: Balance) {
        self.push_action(receipt_index, Action::Transfer(TransferAction { deposit }));
    }

    fn append_action_transfer_to_gas_key(
        &mut self,
        _receipt_index: ReceiptIndex,
        _public_key: PublicKey,
        _deposit: Balance,
    ) {
        self.unsupported("gas keys");
    }

    fn append_action_add_gas_key_with_full_access(
        &mut self,
        _receipt_index: ReceiptIndex,
        _public_key: PublicKey,
        _num_nonces: NonceIndex,
    ) {
        self.unsupported("gas keys");
    }

    fn append_action_add_gas_key_with_function_call(
        &mut self,
        _receipt_index: ReceiptIndex,
        _public_key: PublicKey,
        _num_nonces: NonceIndex,
        _allowance: Option<Balance>,
        _receiver_id: AccountId,
        _method_names: Vec<Vec<u8>>,
    ) -> Result<()> {
        self.unsupported("gas keys");
        Ok(())
    }

    fn append_action_stake(
        &mut self,
        receipt_index: ReceiptIndex,
        stake: Balance,
        public_key: PublicKey,
    ) {
        self.push_action(
            receipt_index,
            Action::Stake(Box::new(StakeAction { stake, public_key })),
        );
    }

    fn append_action_add_key_with_full_access(
        &mut self,
        receipt_index: ReceiptIndex,
        public_key: PublicKey,
        nonce: Nonce,
    ) {
        let access_key = AccessKey {
            nonce,
            permission: AccessKeyPermission::FullAccess,
        };
        self.push_action(
            receipt_index,
            Action::AddKey(Box::new(AddKeyAction {
                public_key,
                access_key,
            })),
        );
    }

    fn append_action_add_key_with_function_call(
        &mut self,
        receipt_index: ReceiptIndex,
        public_key: PublicKey,
        nonce: Nonce,
        allowance: Option<Balance>,
        receiver_id: AccountId,
        method_names_raw: Vec<Vec<u8>>,
    ) -> Result<()> {
        let method_names = method_names(method_names_raw)?;
        let access_key = AccessKey {
            nonce,
            permission: AccessKeyPermission::FunctionCall(FunctionCallPermission {
                allowance,
                receiver_id: receiver_id.to_string(),
                method_names,
            }),
        };
        self.push_action(
            receipt_index,
            Action::AddKey(Box::new(AddKeyAction {
                public_key,
                access_key,
            })),
        );
        Ok(())
    }

    fn append_action_delete_key(&mut self, receipt_index: ReceiptIndex, public_key: PublicKey) {
        self.push_action(
            receipt_index,
            Action::DeleteKey(Box::new(DeleteKeyAction { public_key })),
        );
    }

    fn append_action_delete_account(
        &mut self,
        receipt_index: ReceiptIndex,
        beneficiary_id: AccountId,
    ) {
        self.push_action(
            receipt_index,
            Action::DeleteAccount(DeleteAccountAction { beneficiary_id }),
        );
    }

    fn get_receipt_receiver(&self, receipt_index: ReceiptIndex) -> &AccountId {
        match self.receipts.get(receipt_index as usize) {
            Some(r) => &r.receiver_id,
            None => &self.account_id,
        }
    }

    fn set_refund_to(&mut self, receipt_index: ReceiptIndex, refund_to: AccountId) {
        if let Some(r) = self.receipts.get_mut(receipt_index as usize) {
            r.refund_to = Some(refund_to);
        }
    }

    fn post_quantum_keys_enabled(&self) -> bool {
        false
    }
}
