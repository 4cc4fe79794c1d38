//! The chainsig signer contract: a NEAR contract fronting a threshold-ECDSA MPC network.
//!
//! Users call `sign`; the call waits (NEAR's yield/resume) until a participant node calls
//! `respond` with a signature the contract has checked against the caller's derived key, or
//! until the yield times out. Governance (who the nodes are, the root key, reshares) lives in
//! the plain-Rust state machine of [`state`]; this module is the thin `#[near]` layer on top.

pub mod config;
pub mod error;
pub mod events;
pub mod response;
pub mod state;

use chainsig_primitives::derivation::derive_public_key;
use chainsig_primitives::{
    derive_tweak, EcdsaSignature, Payload, PublicKey, SignRequest, SignatureRequest,
    SignatureResponse, Tweak,
};
use near_sdk::borsh::{BorshDeserialize, BorshSerialize};
use near_sdk::store::LookupMap;
use near_sdk::{env, near, AccountId, Gas, GasWeight, NearToken};
use serde::{Deserialize, Serialize};

pub use config::Config;
pub use error::Error;
pub use response::ResponseArg;
pub use state::{CandidateInfo, Governance, NodeKey, ParticipantInfo, ProtocolState};

/// The register `promise_yield_create` writes the yield (data) id to.
const YIELD_REGISTER: u64 = 0;

/// The method the yield resumes into.
pub const SIGNATURE_CALLBACK: &str = "on_signature";
/// The method that fails a timed-out request with its message.
pub const FAIL_ON_TIMEOUT: &str = "fail_on_timeout";
/// The message a request that got no response in time fails with.
pub const TIMEOUT_MESSAGE: &str = "signature request timed out";

/// The largest response the callback will read back from a resume.
const MAX_RESPONSE_LEN: usize = 1024;

/// How the pending requests are keyed: the identity `respond` names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "near_sdk::borsh")]
pub struct RequestKey {
    pub tweak: [u8; 32],
    pub payload: [u8; 32],
    pub domain_id: u64,
}

impl From<&SignatureRequest> for RequestKey {
    fn from(request: &SignatureRequest) -> Self {
        Self {
            tweak: request.tweak.to_bytes(),
            payload: *request.payload.as_bytes(),
            domain_id: request.domain_id.0,
        }
    }
}

/// One `sign` call waiting for a request: the nonce its callback names and its yield id.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "near_sdk::borsh")]
pub struct Waiting {
    pub nonce: u64,
    pub yield_id: [u8; 32],
}

/// Counters for `system_load`.
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "near_sdk::borsh")]
pub struct Stats {
    /// Distinct requests pending.
    pub pending_requests: u64,
    /// `sign` calls waiting (≥ pending requests: identical requests share one entry).
    pub waiting_calls: u64,
    pub next_nonce: u64,
    pub sign_calls_total: u64,
    pub responses_total: u64,
    pub timeouts_total: u64,
}

/// What `system_load()` shows an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemLoad {
    pub state: String,
    pub epoch: Option<u64>,
    pub participants: u32,
    pub threshold: Option<u32>,
    /// Distinct requests waiting for a signature.
    pub pending_requests: u64,
    /// `sign` calls waiting; identical requests share one pending entry.
    pub waiting_calls: u64,
    pub sign_calls_total: u64,
    pub responses_total: u64,
    pub timeouts_total: u64,
    /// Bytes of storage the contract account uses.
    pub storage_usage: u64,
    /// The contract account's balance, in yoctoNEAR.
    pub account_balance: NearToken,
    /// What the storage costs to keep, in yoctoNEAR.
    pub storage_cost: NearToken,
    /// The deposit `sign` requires right now (1 yoctoNEAR unless flooded).
    pub sign_deposit: NearToken,
}

#[near(contract_state)]
pub struct Contract {
    governance: Governance,
    config: Config,
    pending: LookupMap<RequestKey, Vec<Waiting>>,
    stats: Stats,
}

impl Default for Contract {
    fn default() -> Self {
        Self {
            governance: Governance::default(),
            config: Config::default(),
            pending: LookupMap::new(b"p".to_vec()),
            stats: Stats::default(),
        }
    }
}

/// Ends the call with the error's message (and reverts its state changes).
fn fail(error: Error) -> ! {
    env::panic_str(&error.to_string())
}

/// Refuses any caller but the contract account itself.
fn require_self(method: &str) {
    if env::predecessor_account_id() != env::current_account_id() {
        env::panic_str(&format!(
            "`{method}` may only be called by the contract account itself"
        ));
    }
}

trait OrFail<T> {
    fn or_fail(self) -> T;
}

impl<T, E: Into<Error>> OrFail<T> for Result<T, E> {
    fn or_fail(self) -> T {
        self.unwrap_or_else(|e| fail(e.into()))
    }
}

/// `root + tweak·G`, the key `sign` from (account, path) signs with.
///
/// The scalar multiplication runs in the `ecrecover` host function instead of wasm, which
/// saves most of `respond`'s gas: recovering with `R = G`, `r = x(G)`, message `z = 1` and
/// `s = r·tweak + 1` gives `r⁻¹(s·G − z·G) = tweak·G`. Only the point addition is left to do.
/// Falls back to the plain computation where that recovery cannot work (`s = 0`, or a tweak
/// of zero, whose product is the point at infinity).
pub fn derive_key(root: &PublicKey, tweak: &Tweak) -> Result<PublicKey, Error> {
    use chainsig_primitives::k256::elliptic_curve::point::AffineCoordinates;
    use chainsig_primitives::k256::elliptic_curve::PrimeField;
    use chainsig_primitives::k256::{AffinePoint, ProjectivePoint, Scalar};

    let g = AffinePoint::GENERATOR;
    let r = Option::<Scalar>::from(Scalar::from_repr(g.x())).unwrap_or(Scalar::ZERO);
    let s = r * tweak.as_scalar() + Scalar::ONE;
    let mut message = [0u8; 32];
    message[31] = 1;
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&r.to_bytes());
    signature[32..].copy_from_slice(&s.to_bytes());
    let parity = u8::from(bool::from(g.y_is_odd()));
    let tweak_point = if bool::from(s.is_zero()) {
        None
    } else {
        env::ecrecover(&message, &signature, parity, false)
            .and_then(|xy| PublicKey::from_xy(&xy).ok())
    };
    let derived = match tweak_point {
        Some(tweak_point) => (ProjectivePoint::from(*root.as_affine())
            + ProjectivePoint::from(*tweak_point.as_affine()))
        .to_affine(),
        None => derive_public_key(root.as_affine(), tweak)?,
    };
    Ok(PublicKey::from_affine(derived)?)
}

/// `respond`'s check: `response` is a valid low-s signature of `request.payload` under the key
/// derived from `root` and `request.tweak`, with the nonce point and recovery id it claims.
///
/// The public key recovery runs in the `ecrecover` host function; the contract then compares
/// the recovered key with the derived one. `from_parts` (run when the response was parsed)
/// already refused high s, zero s and recovery ids other than 0 or 1; here `R` must be the
/// point whose x is `r` and whose y parity is the recovery id, so the point `ecrecover`
/// reconstructs is exactly `big_r`.
pub fn verify_response(
    root: &PublicKey,
    request: &SignatureRequest,
    response: &SignatureResponse,
) -> Result<(), Error> {
    let SignatureResponse::Secp256k1(signature) = response;
    let Payload::Ecdsa(payload) = &request.payload;
    let derived = derive_key(root, &request.tweak)?;
    check_nonce_point(signature)?;
    let recovered = env::ecrecover(
        payload.as_bytes(),
        &signature.to_rs_bytes(),
        signature.recovery_id(),
        true,
    )
    .ok_or_else(|| Error::BadSignature("no public key recovers from it".into()))?;
    if recovered[..] != derived.to_sec1_uncompressed()[1..] {
        return Err(Error::BadSignature(
            "it does not verify under the requester's derived public key".into(),
        ));
    }
    Ok(())
}

fn check_nonce_point(signature: &EcdsaSignature) -> Result<(), Error> {
    use chainsig_primitives::k256::elliptic_curve::point::AffineCoordinates;
    use chainsig_primitives::k256::elliptic_curve::PrimeField;
    let big_r = signature.big_r();
    if signature.r().to_repr() != big_r.x() {
        return Err(Error::BadSignature(
            "big_r's x is not below the group order".into(),
        ));
    }
    if signature.recovery_id() != u8::from(bool::from(big_r.y_is_odd())) {
        return Err(Error::BadSignature(
            "recovery_id does not match the parity of big_r".into(),
        ));
    }
    Ok(())
}

impl Contract {
    /// The governance state brought to the current block (see [`Governance::settle`]).
    fn settled(&mut self) -> &mut Governance {
        self.governance.settle(env::block_height());
        &mut self.governance
    }

    /// A settled copy, for views (which cannot write).
    fn settled_view(&self) -> Governance {
        let mut governance = self.governance.clone();
        governance.settle(env::block_height());
        governance
    }

    fn public_key_or_fail(&self) -> PublicKey {
        match self.governance.state.public_key() {
            Some(pk) => *pk,
            None => fail(Error::NoPublicKey(self.governance.state.name())),
        }
    }

    fn remove_waiting(&mut self, key: &RequestKey, nonce: u64) -> bool {
        let Some(waiting) = self.pending.get_mut(key) else {
            return false;
        };
        let before = waiting.len();
        waiting.retain(|w| w.nonce != nonce);
        let removed = waiting.len() < before;
        let now_empty = waiting.is_empty();
        if removed {
            self.stats.waiting_calls -= 1;
        }
        if now_empty {
            self.pending.remove(key);
            self.stats.pending_requests -= 1;
        }
        removed
    }
}

#[near]
impl Contract {
    // ---- Governance ----

    /// Starts the network: `candidates` generate the root key, then vote for it with `vote_pk`.
    /// `config` sets any operating parameter (the others take their defaults). Only the
    /// contract account itself may call this (deploy and init in one transaction).
    pub fn init(&mut self, threshold: u32, candidates: Vec<CandidateInfo>, config: Option<Config>) {
        require_self("init");
        let config = config.unwrap_or_default();
        config.check().map_err(Error::BadConfig).or_fail();
        let rules = config.attempt_rules();
        self.config = config;
        self.governance
            .init(threshold, candidates, env::block_height(), rules)
            .or_fail();
    }

    /// Registers the caller as a candidate (or updates its registration).
    pub fn join(&mut self, url: String, tls_public_key: NodeKey, sign_public_key: NodeKey) {
        let info = CandidateInfo {
            account_id: env::predecessor_account_id(),
            url,
            tls_public_key,
            sign_public_key,
        };
        self.settled().join(info).or_fail();
    }

    /// A participant votes to add `candidate`. Returns whether this vote started the reshare.
    pub fn vote_join(&mut self, candidate: AccountId) -> bool {
        let rules = self.config.attempt_rules();
        self.settled()
            .vote_join(
                &env::predecessor_account_id(),
                &candidate,
                env::block_height(),
                rules,
            )
            .or_fail()
    }

    /// A participant votes to remove `participant`. Returns whether this vote started the reshare.
    pub fn vote_leave(&mut self, participant: AccountId) -> bool {
        let rules = self.config.attempt_rules();
        self.settled()
            .vote_leave(
                &env::predecessor_account_id(),
                &participant,
                env::block_height(),
                rules,
            )
            .or_fail()
    }

    /// An initial member votes for the root key it generated in key generation attempt
    /// `attempt`. Returns whether this vote started the network.
    pub fn vote_pk(&mut self, public_key: PublicKey, attempt: u64) -> bool {
        self.settled()
            .vote_pk(&env::predecessor_account_id(), public_key, attempt)
            .or_fail()
    }

    /// A member of the new set reports that it holds its share of `epoch` from reshare attempt
    /// `attempt`. Returns whether this vote finished the reshare.
    pub fn vote_reshared(&mut self, epoch: u64, attempt: u64) -> bool {
        self.settled()
            .vote_reshared(&env::predecessor_account_id(), epoch, attempt)
            .or_fail()
    }

    /// An old participant votes to cancel the reshare under way. Returns whether this vote
    /// cancelled it (the network then runs on with the old set, key and epoch).
    pub fn vote_cancel_resharing(&mut self) -> bool {
        self.settled()
            .vote_cancel_resharing(&env::predecessor_account_id())
            .or_fail()
    }

    // ---- Signing ----

    /// Asks the network to sign `request.payload` with the key derived from the caller and
    /// `request.path`. Waits for the signature (returned in the compat response JSON) or fails
    /// with "signature request timed out". Needs at least 1 yoctoNEAR (more while the network is
    /// flooded, see `experimental_signature_deposit`); the excess is refunded.
    #[payable]
    pub fn sign(&mut self, request: SignRequest) {
        let state = &self.settled().state;
        if state.public_key().is_none() {
            fail(Error::NotRunning(state.name()));
        }
        let deposit = env::attached_deposit();
        let required_deposit = self.config.sign_deposit(self.stats.pending_requests);
        if deposit < required_deposit {
            fail(Error::NoDeposit {
                required: required_deposit,
            });
        }
        let required = Gas::from_tgas(self.config.sign_min_gas_tgas);
        let attached = env::prepaid_gas();
        if attached < required {
            fail(Error::NotEnoughGas {
                attached_tgas: attached.as_tgas(),
                required_tgas: required.as_tgas(),
            });
        }
        let predecessor = env::predecessor_account_id();
        let signature_request = request.signature_request(predecessor.as_str()).or_fail();
        let key = RequestKey::from(&signature_request);
        let max = self.config.max_waiting_per_request;
        let waiting_now = self.pending.get(&key).map_or(0, Vec::len);
        if waiting_now >= max as usize {
            fail(Error::TooManyWaiting { max });
        }

        let nonce = self.stats.next_nonce;
        self.stats.next_nonce += 1;
        let args = serde_json::to_vec(&CallbackArgs {
            request: signature_request,
            nonce,
        })
        .unwrap_or_else(|_| env::abort());
        let promise = env::promise_yield_create(
            SIGNATURE_CALLBACK,
            args,
            Gas::from_tgas(self.config.callback_gas_tgas),
            GasWeight(0),
            YIELD_REGISTER,
        );
        let yield_id: [u8; 32] = env::read_register(YIELD_REGISTER)
            .and_then(|bytes| bytes.try_into().ok())
            .unwrap_or_else(|| env::abort());

        let waiting = Waiting { nonce, yield_id };
        if waiting_now == 0 {
            self.pending.insert(key, vec![waiting]);
            self.stats.pending_requests += 1;
        } else if let Some(list) = self.pending.get_mut(&key) {
            list.push(waiting);
        }
        self.stats.waiting_calls += 1;
        self.stats.sign_calls_total += 1;

        events::SignRequestEvent {
            predecessor: predecessor.clone(),
            request,
            tweak: signature_request.tweak,
            yield_id: bs58::encode(yield_id).into_string(),
            nonce,
            deposit,
        }
        .emit();

        let excess = deposit.saturating_sub(required_deposit);
        if !excess.is_zero() {
            let refund = env::promise_batch_create(&predecessor);
            env::promise_batch_action_transfer(refund, excess);
        }
        env::promise_return(promise);
    }

    /// A participant answers a pending request. The signature must verify under the
    /// requester's derived key; then every `sign` call waiting on the request gets it.
    pub fn respond(&mut self, request: SignatureRequest, response: ResponseArg) {
        let response = SignatureResponse::from(response);
        let caller = env::predecessor_account_id();
        if !self.settled().state.may_respond(&caller) {
            fail(Error::NotResponder(caller));
        }
        let root = self.public_key_or_fail();
        let key = RequestKey::from(&request);
        if !self.pending.contains_key(&key) {
            fail(Error::NotPending);
        }
        verify_response(&root, &request, &response).or_fail();
        let data = serde_json::to_vec(&response).unwrap_or_else(|_| env::abort());
        let waiting = self.pending.remove(&key).unwrap_or_default();
        for w in &waiting {
            // A yield whose timeout already fired is no longer there; its callback cleans up.
            env::promise_yield_resume(&w.yield_id, &data);
        }
        self.stats.pending_requests -= 1;
        self.stats.waiting_calls -= waiting.len() as u64;
        self.stats.responses_total += 1;
    }

    /// The yield's callback: returns the signature `respond` resumed with, or, on timeout,
    /// forgets the waiting call and fails with "signature request timed out".
    pub fn on_signature(&mut self, request: SignatureRequest, nonce: u64) {
        require_self(SIGNATURE_CALLBACK);
        match env::promise_result_checked(0, MAX_RESPONSE_LEN) {
            Ok(response) => env::value_return(&response),
            Err(_) => {
                // Panicking here would undo the cleanup, so the failure is a separate call.
                self.remove_waiting(&RequestKey::from(&request), nonce);
                self.stats.timeouts_total += 1;
                let fail_call = env::promise_create(
                    env::current_account_id(),
                    FAIL_ON_TIMEOUT,
                    b"{}",
                    NearToken::from_yoctonear(0),
                    Gas::from_tgas(self.config.fail_on_timeout_gas_tgas),
                );
                env::promise_return(fail_call);
            }
        }
    }

    /// Fails with the timeout message; called by `on_signature`. Static, so it does not load
    /// the contract's state: the timeout path stays cheap however large the state grows.
    pub fn fail_on_timeout() {
        require_self(FAIL_ON_TIMEOUT);
        env::panic_str(TIMEOUT_MESSAGE);
    }

    // ---- Views ----

    /// The governance state the nodes follow, as of this block (a key event's attempt that is
    /// over shows the next one; a reshare out of attempts shows as cancelled).
    pub fn state(&self) -> ProtocolState {
        self.settled_view().state
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The deposit `sign` requires right now, in yoctoNEAR (1 unless the network is flooded).
    /// Named as NEAR's own signer contract names it, so existing clients find it.
    pub fn experimental_signature_deposit(&self) -> NearToken {
        self.config.sign_deposit(self.stats.pending_requests)
    }

    pub fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }

    pub fn system_load(&self) -> SystemLoad {
        let state = &self.settled_view().state;
        let storage_usage = env::storage_usage();
        SystemLoad {
            state: state.name().to_string(),
            epoch: state.epoch(),
            participants: state.participants().len() as u32,
            threshold: state.threshold(),
            pending_requests: self.stats.pending_requests,
            waiting_calls: self.stats.waiting_calls,
            sign_calls_total: self.stats.sign_calls_total,
            responses_total: self.stats.responses_total,
            timeouts_total: self.stats.timeouts_total,
            storage_usage,
            account_balance: env::account_balance(),
            storage_cost: env::storage_byte_cost().saturating_mul(storage_usage.into()),
            sign_deposit: self.config.sign_deposit(self.stats.pending_requests),
        }
    }

    /// The root public key, `secp256k1:<base58 of x‖y>`.
    pub fn public_key(&self) -> PublicKey {
        self.public_key_or_fail()
    }

    /// The key `predecessor` signs with under `path`: what `sign` from that account uses.
    pub fn derived_public_key(&self, path: String, predecessor: AccountId) -> PublicKey {
        let root = self.public_key_or_fail();
        let tweak = derive_tweak(predecessor.as_str(), &path).or_fail();
        derive_key(&root, &tweak).or_fail()
    }

    /// Whether `request` is waiting for a response (for nodes and clients).
    pub fn is_pending(&self, request: SignatureRequest) -> bool {
        self.pending.contains_key(&RequestKey::from(&request))
    }
}

/// The arguments `sign` hands its callback.
#[derive(Serialize, Deserialize)]
pub struct CallbackArgs {
    pub request: SignatureRequest,
    pub nonce: u64,
}

#[cfg(test)]
mod tests;
