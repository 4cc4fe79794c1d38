//! Operating parameters: what `sign` demands, how long requests wait, how many callers may
//! wait on one request, how long key events get. Kept in the contract's state so a later
//! governance vote can change them; `init` may set any of them (missing ones take the
//! defaults).

use near_sdk::borsh::{BorshDeserialize, BorshSerialize};
use near_sdk::NearToken;
use serde::{Deserialize, Serialize};

/// NEAR's protocol-level yield timeout, in blocks (`yield_timeout_length_in_blocks`).
pub const YIELD_TIMEOUT_BLOCKS: u64 = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "near_sdk::borsh")]
#[serde(default, deny_unknown_fields)]
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
    /// Blocks one attempt of a key event (key generation, reshare) gets before the next
    /// attempt, with the next leader, begins.
    pub key_event_attempt_blocks: u64,
    /// Failed attempts after which the contract cancels a reshare by itself (back to the old
    /// set). Key generation retries without end: there is nothing to go back to.
    pub key_event_max_attempts: u32,
}

impl Config {
    /// Refuses values the contract cannot work with.
    pub fn check(&self) -> Result<(), String> {
        if self.key_event_attempt_blocks == 0 {
            return Err("key_event_attempt_blocks must be at least 1".into());
        }
        if self.key_event_max_attempts == 0 {
            return Err("key_event_max_attempts must be at least 1".into());
        }
        if self.max_waiting_per_request == 0 {
            return Err("max_waiting_per_request must be at least 1".into());
        }
        Ok(())
    }

    /// The attempt rules a key event beginning now gets.
    pub fn attempt_rules(&self) -> crate::state::AttemptRules {
        crate::state::AttemptRules {
            attempt_blocks: self.key_event_attempt_blocks,
            max_attempts: self.key_event_max_attempts,
        }
    }

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
            // About 36 s at NEAR's 1.2 s blocks: a reshare among dozens of nodes takes a few
            // seconds, seeing the state and voting a few blocks.
            key_event_attempt_blocks: 30,
            key_event_max_attempts: 5,
        }
    }
}
