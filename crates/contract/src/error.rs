//! Every refusal of the contract, with the message the caller sees.

use core::fmt;

use near_sdk::AccountId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    // Governance.
    AlreadyInitialized,
    NoCandidates,
    BadThreshold {
        threshold: u32,
        members: usize,
    },
    DuplicateCandidate(AccountId),
    BadUrl(String),
    WrongState {
        method: &'static str,
        expected: &'static str,
        actual: &'static str,
    },
    NotAParticipant(AccountId),
    NotACandidate(AccountId),
    AlreadyParticipant(AccountId),
    AlreadyVoted(AccountId),
    BelowThreshold {
        participants: usize,
        threshold: u32,
    },
    WrongEpoch {
        given: u64,
        expected: u64,
    },
    WrongAttempt {
        given: u64,
        current: u64,
    },
    PublicKeyMismatch,
    ParticipantIdsExhausted,
    TooManyCandidates {
        max: usize,
    },
    BadConfig(String),
    // Signing.
    NotRunning(&'static str),
    NoPublicKey(&'static str),
    Request(String),
    NoDeposit {
        required: near_sdk::NearToken,
    },
    NotEnoughGas {
        attached_tgas: u64,
        required_tgas: u64,
    },
    TooManyWaiting {
        max: u32,
    },
    NotPending,
    BadSignature(String),
    NotResponder(AccountId),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AlreadyInitialized => f.write_str("the contract is already initialized"),
            Error::NoCandidates => f.write_str("init needs at least one candidate"),
            Error::BadThreshold { threshold, members } => write!(
                f,
                "threshold {threshold} must be at least 1 and at most the number of members ({members})"
            ),
            Error::DuplicateCandidate(a) => write!(f, "candidate {a} is listed twice"),
            Error::BadUrl(why) => write!(f, "bad participant URL: {why}"),
            Error::WrongState {
                method,
                expected,
                actual,
            } => write!(
                f,
                "`{method}` is only allowed while the contract is {expected}; it is {actual}"
            ),
            Error::NotAParticipant(a) => write!(
                f,
                "{a} is not a participant: only current participants may do this"
            ),
            Error::NotACandidate(a) => {
                write!(f, "{a} is not a candidate: it must call `join` first")
            }
            Error::AlreadyParticipant(a) => write!(f, "{a} is already a participant"),
            Error::AlreadyVoted(a) => write!(f, "{a} has already voted on this"),
            Error::BelowThreshold {
                participants,
                threshold,
            } => write!(
                f,
                "refused: removing a participant would leave {} participants, below the threshold of {threshold}",
                participants - 1
            ),
            Error::WrongEpoch { given, expected } if given < expected => write!(
                f,
                "stale epoch {given}: the reshare in question is for epoch {expected}"
            ),
            Error::WrongEpoch { given, expected } => write!(
                f,
                "epoch {given} is not being reshared: the expected epoch is {expected}"
            ),
            Error::WrongAttempt { given, current } => write!(
                f,
                "attempt {given} is not the current one: the key event is in attempt {current}"
            ),
            Error::PublicKeyMismatch => {
                f.write_str("this public key differs from the network's root public key")
            }
            Error::ParticipantIdsExhausted => f.write_str("no participant ids are left"),
            Error::TooManyCandidates { max } => write!(
                f,
                "{max} candidates already wait to be voted in, the most allowed; try again once participants have voted on them"
            ),
            Error::BadConfig(why) => write!(f, "bad config: {why}"),
            Error::NotRunning(state) => write!(
                f,
                "the network cannot sign yet: the contract is {state}, signing needs Running or Resharing"
            ),
            Error::NoPublicKey(state) => write!(
                f,
                "there is no root public key yet: the contract is {state}"
            ),
            Error::Request(why) => write!(f, "invalid sign request: {why}"),
            Error::NoDeposit { required } if required.as_yoctonear() == 1 => f.write_str(
                "attach a deposit of at least 1 yoctoNEAR to `sign` (the excess is refunded)",
            ),
            Error::NoDeposit { required } => write!(
                f,
                "the network is under load: `sign` needs a deposit of at least {} yoctoNEAR now (see `experimental_signature_deposit`; the excess is refunded)",
                required.as_yoctonear()
            ),
            Error::NotEnoughGas {
                attached_tgas,
                required_tgas,
            } => write!(
                f,
                "not enough gas: `sign` needs at least {required_tgas} TGas attached, got {attached_tgas} TGas"
            ),
            Error::TooManyWaiting { max } => write!(
                f,
                "this exact request already has {max} callers waiting for it, the most allowed; try again later"
            ),
            Error::NotPending => f.write_str(
                "no such pending request: it was answered already, timed out, or never made",
            ),
            Error::BadSignature(why) => write!(f, "signature refused: {why}"),
            Error::NotResponder(a) => write!(
                f,
                "{a} is not a participant: only participants may respond to sign requests"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<chainsig_primitives::Error> for Error {
    fn from(e: chainsig_primitives::Error) -> Self {
        Error::Request(e.to_string())
    }
}
