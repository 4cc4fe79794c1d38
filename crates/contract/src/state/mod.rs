//! The governance state machine, in plain Rust: no `env::` calls, so every transition can be
//! unit- and property-tested natively. The `#[near]` layer passes in who called and applies
//! the result.
//!
//! `NotInitialized → Initializing → Running ⇄ Resharing`:
//! - `Initializing`: the candidates of `init` generate the root key and vote for it
//!   (`vote_pk`); when every candidate has voted for the same key in one attempt, it is
//!   `Running` at epoch 0.
//! - `Running`: accounts register as candidates (`join`); participants vote candidates in
//!   (`vote_join`) or participants out (`vote_leave`); `threshold` votes move to `Resharing`
//!   with the new set, into a fresh epoch number.
//! - `Resharing`: the new set reshares the same root key; when every member of the new set has
//!   reported its share (`vote_reshared(epoch, attempt)`) in one attempt, it is `Running` at
//!   the new epoch. The old set keeps signing meanwhile. A threshold of the old participants
//!   can cancel (`vote_cancel_resharing`), and the contract cancels by itself once the
//!   attempts run out: back to `Running` with the old set, epoch and key.
//!
//! Key events run in attempts kept by the block height ([`key_event`]); callers settle the
//! state at the current height ([`Governance::settle`]) before anything else.
//!
//! Every vote counts once per voter and only from the set that is allowed to vote; the number
//! of participants never drops below `threshold`.

pub mod key_event;

use chainsig_primitives::{ParticipantId, PublicKey};
use near_sdk::borsh::{BorshDeserialize, BorshSerialize};
use near_sdk::AccountId;
use serde::{Deserialize, Serialize};

use crate::error::Error;
pub use key_event::{Attempt, AttemptRules, KeyEvent};

/// The longest URL a participant may register, in bytes.
pub const MAX_URL_LEN: usize = 512;

/// The most candidates that may wait to be voted in at once. Every call loads the governance
/// state, so an unbounded list would let anyone make every call dearer by joining.
pub const MAX_CANDIDATES: usize = 32;

/// The public key of a node's TLS certificate or of its signing account key, in NEAR's
/// `ed25519:<base58>` (or `secp256k1:<base58>`) form.
pub type NodeKey = near_sdk::PublicKey;

/// What a candidate registers about itself (`init` takes these, `join` records one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "near_sdk::borsh")]
#[serde(deny_unknown_fields)]
pub struct CandidateInfo {
    pub account_id: AccountId,
    /// Where the node's P2P endpoint listens, e.g. `https://node1.example:3000`.
    pub url: String,
    /// The key of the node's TLS certificate; peers pin it.
    pub tls_public_key: NodeKey,
    /// The node's signing key (its NEAR access key for `respond` and `vote_*`).
    pub sign_public_key: NodeKey,
}

impl CandidateInfo {
    fn check(&self) -> Result<(), Error> {
        check_url(&self.url)
    }

    fn into_participant(self, id: ParticipantId) -> ParticipantInfo {
        ParticipantInfo {
            account_id: self.account_id,
            id,
            url: self.url,
            tls_public_key: self.tls_public_key,
            sign_public_key: self.sign_public_key,
        }
    }
}

fn check_url(url: &str) -> Result<(), Error> {
    if url.is_empty() {
        return Err(Error::BadUrl("the URL must not be empty".into()));
    }
    if url.len() > MAX_URL_LEN {
        return Err(Error::BadUrl(format!(
            "the URL is {} bytes long; at most {MAX_URL_LEN} are allowed",
            url.len()
        )));
    }
    Ok(())
}

/// A member of the MPC network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "near_sdk::borsh")]
pub struct ParticipantInfo {
    pub account_id: AccountId,
    /// Assigned by the contract, never reused, kept across reshares.
    #[borsh(
        serialize_with = "borsh_ext::ser_participant_id",
        deserialize_with = "borsh_ext::de_participant_id"
    )]
    pub id: ParticipantId,
    pub url: String,
    pub tls_public_key: NodeKey,
    pub sign_public_key: NodeKey,
}

/// Participants ordered by id; account ids and ids are both unique.
pub type Participants = Vec<ParticipantInfo>;

/// Who voted, in the order they voted; never twice the same account. (Vectors rather than
/// B-tree sets: the sets are tiny, and the B-tree code costs the wasm some 30 KB.)
pub type Voters = Vec<AccountId>;

/// The votes about one account: a candidate to add or a participant to remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "near_sdk::borsh")]
pub struct AccountVotes {
    pub account_id: AccountId,
    pub voters: Voters,
}

/// The voters about `account`, created empty on first use.
fn votes_about<'a>(votes: &'a mut Vec<AccountVotes>, account: &AccountId) -> &'a mut Voters {
    let index = match votes.iter().position(|v| &v.account_id == account) {
        Some(index) => index,
        None => {
            votes.push(AccountVotes {
                account_id: account.clone(),
                voters: Voters::new(),
            });
            votes.len() - 1
        }
    };
    &mut votes[index].voters
}

/// The voters for one proposed root public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "near_sdk::borsh")]
pub struct PkVotes {
    #[borsh(
        serialize_with = "borsh_ext::ser_public_key",
        deserialize_with = "borsh_ext::de_public_key"
    )]
    pub public_key: PublicKey,
    pub voters: Voters,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "near_sdk::borsh")]
pub struct InitializingState {
    /// The initial members, with the participant ids they generate the key under (0, 1, … in
    /// `init`'s order) and keep once Running.
    pub candidates: Participants,
    pub threshold: u32,
    /// The current attempt's votes, per key.
    pub pk_votes: Vec<PkVotes>,
    pub key_event: KeyEvent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "near_sdk::borsh")]
pub struct RunningState {
    pub epoch: u64,
    pub participants: Participants,
    pub threshold: u32,
    #[borsh(
        serialize_with = "borsh_ext::ser_public_key",
        deserialize_with = "borsh_ext::de_public_key"
    )]
    pub public_key: PublicKey,
    /// Accounts that called `join` and wait to be voted in.
    pub candidates: Vec<CandidateInfo>,
    /// Per candidate: the participants who voted to add it.
    pub join_votes: Vec<AccountVotes>,
    /// Per participant: the participants who voted to remove it.
    pub leave_votes: Vec<AccountVotes>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "near_sdk::borsh")]
pub struct ResharingState {
    /// The epoch being left; the old participants keep signing in it until the reshare ends.
    pub old_epoch: u64,
    /// The epoch the reshare finishes into: a number no earlier reshare used, so the shares of
    /// a cancelled reshare never mix with a later one's.
    pub new_epoch: u64,
    pub old_participants: Participants,
    pub new_participants: Participants,
    pub threshold: u32,
    #[borsh(
        serialize_with = "borsh_ext::ser_public_key",
        deserialize_with = "borsh_ext::de_public_key"
    )]
    pub public_key: PublicKey,
    pub key_event: KeyEvent,
    /// Members of the new set who hold their new share from the current attempt.
    pub finished_votes: Voters,
    /// Old participants who voted to cancel the reshare.
    pub cancel_votes: Voters,
    /// Candidates registered before or during the reshare; they stay candidates after it.
    pub candidates: Vec<CandidateInfo>,
}

/// The contract's governance state, as `state()` shows it (externally tagged:
/// `"NotInitialized"`, `{"Initializing":{…}}`, `{"Running":{…}}`, `{"Resharing":{…}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "near_sdk::borsh")]
pub enum ProtocolState {
    NotInitialized,
    Initializing(InitializingState),
    Running(RunningState),
    Resharing(ResharingState),
}

/// The state machine with the counters that outlive every state: the next participant id and
/// the next epoch number.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "near_sdk::borsh")]
pub struct Governance {
    pub state: ProtocolState,
    pub next_participant_id: u32,
    /// The epoch the next reshare goes to; never handed out twice.
    pub next_epoch: u64,
}

impl Default for Governance {
    fn default() -> Self {
        Self {
            state: ProtocolState::NotInitialized,
            next_participant_id: 0,
            next_epoch: 1,
        }
    }
}

impl ProtocolState {
    pub fn name(&self) -> &'static str {
        match self {
            ProtocolState::NotInitialized => "NotInitialized",
            ProtocolState::Initializing(_) => "Initializing",
            ProtocolState::Running(_) => "Running",
            ProtocolState::Resharing(_) => "Resharing",
        }
    }

    /// The root public key, once it exists (Running and Resharing).
    pub fn public_key(&self) -> Option<&PublicKey> {
        match self {
            ProtocolState::Running(s) => Some(&s.public_key),
            ProtocolState::Resharing(s) => Some(&s.public_key),
            _ => None,
        }
    }

    pub fn threshold(&self) -> Option<u32> {
        match self {
            ProtocolState::NotInitialized => None,
            ProtocolState::Initializing(s) => Some(s.threshold),
            ProtocolState::Running(s) => Some(s.threshold),
            ProtocolState::Resharing(s) => Some(s.threshold),
        }
    }

    /// The current epoch: 0 while initializing, the old epoch while resharing.
    pub fn epoch(&self) -> Option<u64> {
        match self {
            ProtocolState::NotInitialized => None,
            ProtocolState::Initializing(_) => Some(0),
            ProtocolState::Running(s) => Some(s.epoch),
            ProtocolState::Resharing(s) => Some(s.old_epoch),
        }
    }

    /// Whether `account` may answer sign requests: a participant while Running; a member of
    /// either set while Resharing (the old set holds the shares, the new set soon will).
    pub fn may_respond(&self, account: &AccountId) -> bool {
        match self {
            ProtocolState::Running(s) => find(&s.participants, account).is_some(),
            ProtocolState::Resharing(s) => {
                find(&s.old_participants, account).is_some()
                    || find(&s.new_participants, account).is_some()
            }
            _ => false,
        }
    }

    /// The members that hold (or are about to hold) key shares.
    pub fn participants(&self) -> &[ParticipantInfo] {
        match self {
            ProtocolState::Initializing(s) => &s.candidates,
            ProtocolState::Running(s) => &s.participants,
            ProtocolState::Resharing(s) => &s.old_participants,
            _ => &[],
        }
    }
}

pub fn find<'a>(
    participants: &'a [ParticipantInfo],
    account: &AccountId,
) -> Option<&'a ParticipantInfo> {
    participants.iter().find(|p| &p.account_id == account)
}

fn wrong_state(method: &'static str, expected: &'static str, state: &ProtocolState) -> Error {
    Error::WrongState {
        method,
        expected,
        actual: state.name(),
    }
}

/// Records `voter`'s vote in `voters`; a second vote by the same account is refused.
fn add_vote(voters: &mut Voters, voter: &AccountId) -> Result<usize, Error> {
    if voters.contains(voter) {
        return Err(Error::AlreadyVoted(voter.clone()));
    }
    voters.push(voter.clone());
    Ok(voters.len())
}

fn reached(votes: usize, threshold: u32) -> bool {
    votes >= threshold as usize
}

/// The participant ids of `members`, sorted.
fn ids(members: &[ParticipantInfo]) -> Vec<ParticipantId> {
    let mut ids: Vec<ParticipantId> = members.iter().map(|m| m.id).collect();
    ids.sort_unstable();
    ids
}

impl ResharingState {
    /// Who may lead a reshare attempt: members of both sets (they hold an old share and will
    /// hold a new one, so they always take part).
    pub fn leaders(&self) -> Vec<ParticipantId> {
        let old = ids(&self.old_participants);
        ids(&self.new_participants)
            .into_iter()
            .filter(|p| old.binary_search(p).is_ok())
            .collect()
    }
}

impl Governance {
    /// `init(threshold, candidates)` at block `now`: the initial members, who will generate
    /// the root key in attempts under `rules`.
    pub fn init(
        &mut self,
        threshold: u32,
        candidates: Vec<CandidateInfo>,
        now: u64,
        rules: AttemptRules,
    ) -> Result<(), Error> {
        if !matches!(self.state, ProtocolState::NotInitialized) {
            return Err(Error::AlreadyInitialized);
        }
        if candidates.is_empty() {
            return Err(Error::NoCandidates);
        }
        if threshold == 0 || threshold as usize > candidates.len() {
            return Err(Error::BadThreshold {
                threshold,
                members: candidates.len(),
            });
        }
        for (i, candidate) in candidates.iter().enumerate() {
            candidate.check()?;
            if candidates[..i]
                .iter()
                .any(|c| c.account_id == candidate.account_id)
            {
                return Err(Error::DuplicateCandidate(candidate.account_id.clone()));
            }
        }
        let candidates: Participants = candidates
            .into_iter()
            .enumerate()
            .map(|(i, c)| c.into_participant(ParticipantId(i as u32)))
            .collect();
        self.next_participant_id = candidates.len() as u32;
        self.next_epoch = 1;
        let key_event = KeyEvent::begin(now, rules, &ids(&candidates), 0);
        self.state = ProtocolState::Initializing(InitializingState {
            candidates,
            threshold,
            pk_votes: Vec::new(),
            key_event,
        });
        Ok(())
    }

    /// Brings the state to block `now`: a key event's attempt that is over loses its votes,
    /// and a reshare whose attempts are used up is cancelled. Every call runs this first, and
    /// the `state()` view shows its result, so no transaction is needed for time to pass.
    pub fn settle(&mut self, now: u64) {
        match &mut self.state {
            ProtocolState::Initializing(s) => {
                if s.key_event.advance(now, &ids(&s.candidates), 0) {
                    s.pk_votes.clear();
                }
            }
            ProtocolState::Resharing(s) => {
                if s.key_event.exhausted_at(now) {
                    self.cancel_resharing();
                    return;
                }
                let leaders = s.leaders();
                if s.key_event.advance(now, &leaders, s.new_epoch) {
                    s.finished_votes.clear();
                }
            }
            ProtocolState::NotInitialized | ProtocolState::Running(_) => {}
        }
    }

    /// `vote_pk(public_key, attempt)`: an initial member reports the root key it generated in
    /// `attempt`. When every candidate has voted for one key in the current attempt, the
    /// network starts at epoch 0. After that a member's late vote for the same key is
    /// accepted and changes nothing; a different key is refused.
    /// Returns whether this vote started the network.
    pub fn vote_pk(
        &mut self,
        voter: &AccountId,
        public_key: PublicKey,
        attempt: u64,
    ) -> Result<bool, Error> {
        match &mut self.state {
            ProtocolState::Initializing(s) => {
                if !s.candidates.iter().any(|c| &c.account_id == voter) {
                    return Err(Error::NotAParticipant(voter.clone()));
                }
                check_attempt(attempt, &s.key_event)?;
                if s.pk_votes.iter().any(|v| v.voters.contains(voter)) {
                    return Err(Error::AlreadyVoted(voter.clone()));
                }
                let index = match s.pk_votes.iter().position(|v| v.public_key == public_key) {
                    Some(index) => index,
                    None => {
                        s.pk_votes.push(PkVotes {
                            public_key,
                            voters: Voters::new(),
                        });
                        s.pk_votes.len() - 1
                    }
                };
                let votes = add_vote(&mut s.pk_votes[index].voters, voter)?;
                if votes < s.candidates.len() {
                    return Ok(false);
                }
                self.state = ProtocolState::Running(RunningState {
                    epoch: 0,
                    participants: std::mem::take(&mut s.candidates),
                    threshold: s.threshold,
                    public_key,
                    candidates: Vec::new(),
                    join_votes: Vec::new(),
                    leave_votes: Vec::new(),
                });
                Ok(true)
            }
            ProtocolState::Running(_) | ProtocolState::Resharing(_) => {
                if !self.state.may_respond(voter) {
                    return Err(Error::NotAParticipant(voter.clone()));
                }
                let current = self.state.public_key().copied();
                if current != Some(public_key) {
                    return Err(Error::PublicKeyMismatch);
                }
                Ok(false)
            }
            ProtocolState::NotInitialized => {
                Err(wrong_state("vote_pk", "Initializing", &self.state))
            }
        }
    }

    /// `join(url, tls_public_key, sign_public_key)`: `account` registers (or updates) itself as a
    /// candidate, to be voted in with `vote_join`. Members cannot join again.
    pub fn join(&mut self, info: CandidateInfo) -> Result<(), Error> {
        info.check()?;
        let candidates = match &mut self.state {
            ProtocolState::Running(s) => {
                if find(&s.participants, &info.account_id).is_some() {
                    return Err(Error::AlreadyParticipant(info.account_id));
                }
                &mut s.candidates
            }
            ProtocolState::Resharing(s) => {
                if find(&s.new_participants, &info.account_id).is_some() {
                    return Err(Error::AlreadyParticipant(info.account_id));
                }
                &mut s.candidates
            }
            _ => return Err(wrong_state("join", "Running or Resharing", &self.state)),
        };
        let waiting = candidates.len();
        match candidates
            .iter_mut()
            .find(|c| c.account_id == info.account_id)
        {
            Some(existing) => *existing = info,
            None if waiting >= MAX_CANDIDATES => {
                return Err(Error::TooManyCandidates {
                    max: MAX_CANDIDATES,
                })
            }
            None => candidates.push(info),
        }
        Ok(())
    }

    /// `vote_join(candidate)` at block `now`: a participant votes to add a candidate. At
    /// `threshold` votes the network moves to Resharing with the candidate added under a fresh
    /// participant id. Returns whether this vote started the reshare.
    pub fn vote_join(
        &mut self,
        voter: &AccountId,
        candidate: &AccountId,
        now: u64,
        rules: AttemptRules,
    ) -> Result<bool, Error> {
        let ProtocolState::Running(s) = &mut self.state else {
            return Err(wrong_state("vote_join", "Running", &self.state));
        };
        if find(&s.participants, voter).is_none() {
            return Err(Error::NotAParticipant(voter.clone()));
        }
        if find(&s.participants, candidate).is_some() {
            return Err(Error::AlreadyParticipant(candidate.clone()));
        }
        let Some(index) = s.candidates.iter().position(|c| &c.account_id == candidate) else {
            return Err(Error::NotACandidate(candidate.clone()));
        };
        let votes = add_vote(votes_about(&mut s.join_votes, candidate), voter)?;
        if !reached(votes, s.threshold) {
            return Ok(false);
        }
        let id = ParticipantId(self.next_participant_id);
        self.next_participant_id = self
            .next_participant_id
            .checked_add(1)
            .ok_or(Error::ParticipantIdsExhausted)?;
        let mut candidates = std::mem::take(&mut s.candidates);
        let joining = candidates.remove(index);
        let mut new_participants = s.participants.clone();
        new_participants.push(joining.into_participant(id));
        self.start_resharing(new_participants, candidates, now, rules);
        Ok(true)
    }

    /// `vote_leave(participant)` at block `now`: a participant votes to remove a participant
    /// (itself included). Refused when the set would drop below `threshold`. At `threshold`
    /// votes the network moves to Resharing without it. Returns whether this vote started the
    /// reshare.
    pub fn vote_leave(
        &mut self,
        voter: &AccountId,
        leaving: &AccountId,
        now: u64,
        rules: AttemptRules,
    ) -> Result<bool, Error> {
        let ProtocolState::Running(s) = &mut self.state else {
            return Err(wrong_state("vote_leave", "Running", &self.state));
        };
        if find(&s.participants, voter).is_none() {
            return Err(Error::NotAParticipant(voter.clone()));
        }
        if find(&s.participants, leaving).is_none() {
            return Err(Error::NotAParticipant(leaving.clone()));
        }
        if s.participants.len() - 1 < s.threshold as usize {
            return Err(Error::BelowThreshold {
                participants: s.participants.len(),
                threshold: s.threshold,
            });
        }
        let votes = add_vote(votes_about(&mut s.leave_votes, leaving), voter)?;
        if !reached(votes, s.threshold) {
            return Ok(false);
        }
        let new_participants = s
            .participants
            .iter()
            .filter(|p| &p.account_id != leaving)
            .cloned()
            .collect();
        let candidates = std::mem::take(&mut s.candidates);
        self.start_resharing(new_participants, candidates, now, rules);
        Ok(true)
    }

    /// Running → Resharing into a fresh epoch number; the old set keeps signing meanwhile.
    fn start_resharing(
        &mut self,
        new_participants: Participants,
        candidates: Vec<CandidateInfo>,
        now: u64,
        rules: AttemptRules,
    ) {
        let ProtocolState::Running(s) = &mut self.state else {
            return;
        };
        let new_epoch = self.next_epoch;
        self.next_epoch = new_epoch.saturating_add(1);
        let mut resharing = ResharingState {
            old_epoch: s.epoch,
            new_epoch,
            old_participants: std::mem::take(&mut s.participants),
            new_participants,
            threshold: s.threshold,
            public_key: s.public_key,
            key_event: KeyEvent::begin(now, rules, &[], 0),
            finished_votes: Voters::new(),
            cancel_votes: Voters::new(),
            candidates,
        };
        resharing.key_event = KeyEvent::begin(now, rules, &resharing.leaders(), new_epoch);
        self.state = ProtocolState::Resharing(resharing);
    }

    /// `vote_reshared(epoch, attempt)`: a member of the new set reports that it holds its share
    /// for `epoch` from `attempt`. When every member of the new set has done so in the current
    /// attempt, the network runs at that epoch with the new set. A late vote for the epoch now
    /// running is accepted and changes nothing; any other epoch or attempt is refused.
    /// Returns whether this vote finished the reshare.
    pub fn vote_reshared(
        &mut self,
        voter: &AccountId,
        epoch: u64,
        attempt: u64,
    ) -> Result<bool, Error> {
        match &mut self.state {
            ProtocolState::Resharing(s) => {
                if find(&s.new_participants, voter).is_none() {
                    return Err(Error::NotAParticipant(voter.clone()));
                }
                if epoch != s.new_epoch {
                    return Err(Error::WrongEpoch {
                        given: epoch,
                        expected: s.new_epoch,
                    });
                }
                check_attempt(attempt, &s.key_event)?;
                let votes = add_vote(&mut s.finished_votes, voter)?;
                if votes < s.new_participants.len() {
                    return Ok(false);
                }
                self.state = ProtocolState::Running(RunningState {
                    epoch,
                    participants: std::mem::take(&mut s.new_participants),
                    threshold: s.threshold,
                    public_key: s.public_key,
                    candidates: std::mem::take(&mut s.candidates),
                    join_votes: Vec::new(),
                    leave_votes: Vec::new(),
                });
                Ok(true)
            }
            ProtocolState::Running(s) => {
                if find(&s.participants, voter).is_none() {
                    return Err(Error::NotAParticipant(voter.clone()));
                }
                if epoch == s.epoch && epoch > 0 {
                    // Late vote for the reshare that just finished.
                    return Ok(false);
                }
                Err(Error::WrongEpoch {
                    given: epoch,
                    expected: s.epoch,
                })
            }
            _ => Err(wrong_state("vote_reshared", "Resharing", &self.state)),
        }
    }

    /// `vote_cancel_resharing()`: an old participant votes to give up the reshare. At
    /// `threshold` votes the network runs on with the old set, threshold, key and epoch, as if
    /// the vote that started the reshare had never passed. Returns whether this vote cancelled it.
    pub fn vote_cancel_resharing(&mut self, voter: &AccountId) -> Result<bool, Error> {
        let ProtocolState::Resharing(s) = &mut self.state else {
            return Err(wrong_state(
                "vote_cancel_resharing",
                "Resharing",
                &self.state,
            ));
        };
        if find(&s.old_participants, voter).is_none() {
            return Err(Error::NotAParticipant(voter.clone()));
        }
        let votes = add_vote(&mut s.cancel_votes, voter)?;
        if !reached(votes, s.threshold) {
            return Ok(false);
        }
        self.cancel_resharing();
        Ok(true)
    }

    /// Resharing → Running with the old set. A member the reshare would have admitted is a
    /// candidate again (without votes), if there is room; a member it would have removed is a
    /// member again, not a candidate; the epoch number is not reused.
    fn cancel_resharing(&mut self) {
        let ProtocolState::Resharing(s) = &mut self.state else {
            return;
        };
        let mut candidates = std::mem::take(&mut s.candidates);
        // A leaving member may have registered again during the reshare; it stays a member.
        candidates.retain(|c| find(&s.old_participants, &c.account_id).is_none());
        for member in &s.new_participants {
            let admitted = find(&s.old_participants, &member.account_id).is_none();
            let listed = candidates.iter().any(|c| c.account_id == member.account_id);
            if admitted && !listed && candidates.len() < MAX_CANDIDATES {
                candidates.push(CandidateInfo {
                    account_id: member.account_id.clone(),
                    url: member.url.clone(),
                    tls_public_key: member.tls_public_key.clone(),
                    sign_public_key: member.sign_public_key.clone(),
                });
            }
        }
        self.state = ProtocolState::Running(RunningState {
            epoch: s.old_epoch,
            participants: std::mem::take(&mut s.old_participants),
            threshold: s.threshold,
            public_key: s.public_key,
            candidates,
            join_votes: Vec::new(),
            leave_votes: Vec::new(),
        });
    }
}

/// Refuses a vote for an attempt other than the current one: its share (or key) is not the
/// one the others are voting for.
fn check_attempt(attempt: u64, event: &KeyEvent) -> Result<(), Error> {
    if attempt != event.attempt.id {
        return Err(Error::WrongAttempt {
            given: attempt,
            current: event.attempt.id,
        });
    }
    Ok(())
}

/// Borsh for the primitives' types, which carry serde only.
pub(crate) mod borsh_ext {
    use super::*;
    use near_sdk::borsh::io::{Error as IoError, ErrorKind, Read, Write};

    pub fn ser_participant_id<W: Write>(id: &ParticipantId, writer: &mut W) -> Result<(), IoError> {
        BorshSerialize::serialize(&id.0, writer)
    }

    pub fn de_participant_id<R: Read>(reader: &mut R) -> Result<ParticipantId, IoError> {
        Ok(ParticipantId(u32::deserialize_reader(reader)?))
    }

    /// Public keys are stored uncompressed (x‖y, 64 bytes): loading them then needs only an
    /// on-curve check, not the square root that decompression costs on every call.
    pub fn ser_public_key<W: Write>(pk: &PublicKey, writer: &mut W) -> Result<(), IoError> {
        writer.write_all(&pk.to_sec1_uncompressed()[1..])
    }

    pub fn de_public_key<R: Read>(reader: &mut R) -> Result<PublicKey, IoError> {
        let mut bytes = [0u8; 64];
        reader.read_exact(&mut bytes)?;
        PublicKey::from_xy(&bytes).map_err(|e| IoError::new(ErrorKind::InvalidData, e.to_string()))
    }
}
