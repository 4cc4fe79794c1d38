//! Operating parameters: what `sign` demands, how long requests wait, how many callers may
//! wait on one request. Kept in the contract's state so a later governance vote can change them.

use near_sdk::borsh::{BorshDeserialize, BorshSerialize};
use near_sdk::NearToken;
use serde::{Deserialize, Serialize};

/// NEAR's protocol-level yield timeout, in blocks (`yield_timeout_length_in_blocks`).
pub const YIELD_TIMEOUT_BLOCKS: u64 = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "near_sdk::borsh")]
pub struct Config {
    /// The least gas a `sign` call must carry, in TGas: its own work plus the callback.
    pub sign_min_gas_tgas: u64,
    /// Gas reserved for the callback that returns the signature (or the timeout), in TGas.
    pub callback_gas_tgas: u64,
    /// Gas for the call that fails a timed-out request with its message, in TGas.
    pub fail_on_timeout_gas_tgas: u64,
    /// How many `sign` calls may wait on one identical request at a time.
    pub max_waiting_per_request: u32,
    /// Blocks a request waits for `respond` before it fails (set by the protocol; shown for
    /// the nodes' benefit).
    pub yield_timeout_blocks: u64,
    /// The longest derivation path accepted, in bytes.
    pub max_path_len: u32,
    /// While fewer distinct requests than this are pending, `sign` costs 1 yoctoNEAR.
    pub free_pending_requests: u64,
    /// Beyond that, each pending request above the free ones adds this much to the deposit
    /// `sign` requires (kept: it pays for the storage the flood occupies).
    pub deposit_per_extra_request: NearToken,
}

impl Config {
    /// The deposit `sign` requires while `pending` distinct requests are pending: 1 yoctoNEAR
    /// normally, growing linearly under a flood of requests, so that filling the contract's
    /// storage (which its balance pays for) costs the flooder, not the contract.
    pub fn sign_deposit(&self, pending: u64) -> NearToken {
        if pending < self.free_pending_requests {
            return NearToken::from_yoctonear(1);
        }
        let extra = pending - self.free_pending_requests + 1;
        self.deposit_per_extra_request
            .saturating_mul(u128::from(extra))
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            sign_min_gas_tgas: 20,
            callback_gas_tgas: 10,
            fail_on_timeout_gas_tgas: 4,
            max_waiting_per_request: 16,
            yield_timeout_blocks: YIELD_TIMEOUT_BLOCKS,
            max_path_len: chainsig_primitives::derivation::MAX_PATH_LEN as u32,
            free_pending_requests: 1024,
            // About what one pending entry's storage costs (~150 bytes at 1e19 yocto/byte).
            deposit_per_extra_request: NearToken::from_millinear(2),
        }
    }
}
