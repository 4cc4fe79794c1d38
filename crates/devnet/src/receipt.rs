//! Receipts as the devnet keeps them, and their nearcore views.

use borsh::{BorshDeserialize, BorshSerialize};
use near_crypto::PublicKey;
use near_primitives::action::Action;
use near_primitives::hash::CryptoHash;
use near_primitives::types::{AccountId, Balance};
use near_primitives::views::{ActionView, DataReceiverView, ReceiptEnumView, ReceiptView};

/// The account that sends refunds (as on NEAR).
pub const SYSTEM_ACCOUNT: &str = "system";

#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct Receipt {
    pub id: CryptoHash,
    pub predecessor_id: AccountId,
    pub receiver_id: AccountId,
    pub body: ReceiptBody,
}

#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub enum ReceiptBody {
    Action(ActionReceipt),
    Data {
        data_id: CryptoHash,
        data: Option<Vec<u8>>,
        is_promise_resume: bool,
    },
}

#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct ActionReceipt {
    pub signer_id: AccountId,
    pub signer_public_key: PublicKey,
    pub gas_price: u128,
    pub output_data_receivers: Vec<(CryptoHash, AccountId)>,
    pub input_data_ids: Vec<CryptoHash>,
    pub actions: Vec<Action>,
    pub is_promise_yield: bool,
    pub refund_to: Option<AccountId>,
}

impl Receipt {
    pub fn is_refund(&self) -> bool {
        self.predecessor_id.as_str() == SYSTEM_ACCOUNT
    }

    pub fn to_view(&self) -> ReceiptView {
        let receipt = match &self.body {
            ReceiptBody::Action(a) => ReceiptEnumView::Action {
                signer_id: a.signer_id.clone(),
                signer_public_key: a.signer_public_key.clone(),
                gas_price: Balance::from_yoctonear(a.gas_price),
                output_data_receivers: a
                    .output_data_receivers
                    .iter()
                    .map(|(data_id, receiver_id)| DataReceiverView {
                        data_id: *data_id,
                        receiver_id: receiver_id.clone(),
                    })
                    .collect(),
                input_data_ids: a.input_data_ids.clone(),
                actions: a.actions.iter().cloned().map(ActionView::from).collect(),
                is_promise_yield: a.is_promise_yield,
                refund_to: a.refund_to.clone(),
            },
            ReceiptBody::Data {
                data_id,
                data,
                is_promise_resume,
            } => ReceiptEnumView::Data {
                data_id: *data_id,
                data: data.clone(),
                is_promise_resume: *is_promise_resume,
            },
        };
        ReceiptView {
            predecessor_id: self.predecessor_id.clone(),
            receiver_id: self.receiver_id.clone(),
            receipt_id: self.id,
            receipt,
            _priority: 0,
        }
    }
}
