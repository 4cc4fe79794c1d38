//! The contract's `state()` as the node reads it (the JSON shapes are in
//! `crates/contract/README.md`). Only what the coordinator acts on is typed; unknown fields are
//! ignored so a contract that grows a field does not stop the nodes.

use std::str::FromStr;

use chainsig_primitives::{ParticipantId, PublicKey};
use serde::Deserialize;

use crate::mesh::network::PeerInfo;
use crate::mesh::TlsPublicKey;

/// A participant or candidate as the contract lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Member {
    pub account_id: String,
    pub id: u32,
    /// The mesh address peers dial (`host:port`).
    pub url: String,
    /// `ed25519:<base58>`: the key its TLS certificate must carry.
    pub tls_public_key: String,
}

impl Member {
    pub fn participant(&self) -> ParticipantId {
        ParticipantId(self.id)
    }

    /// The member as a mesh peer; `None` when its registered TLS key is not an ed25519 key.
    pub fn peer(&self) -> Option<PeerInfo> {
        Some(PeerInfo {
            id: self.participant(),
            address: self.url.clone(),
            tls_key: parse_tls_key(&self.tls_public_key)?,
        })
    }
}

/// `ed25519:<base58>` → the 32 key bytes.
pub fn parse_tls_key(text: &str) -> Option<TlsPublicKey> {
    match near_crypto::PublicKey::from_str(text).ok()? {
        near_crypto::PublicKey::ED25519(key) => Some(TlsPublicKey(key.0)),
        _ => None,
    }
}

/// The 32 key bytes → `ed25519:<base58>`, as `join` and `init` take it.
pub fn format_tls_key(key: &TlsPublicKey) -> String {
    near_crypto::PublicKey::ED25519(near_crypto::ED25519PublicKey(key.0)).to_string()
}

/// A node that asked to join a running network; it has no participant id until admitted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Candidate {
    pub account_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PkVote {
    pub public_key: String,
    pub voters: Vec<String>,
}

/// The attempt a key event (key generation, reshare) is in, as the contract keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Attempt {
    pub id: u64,
    /// The participant id of the member that starts this attempt's run.
    pub leader: u32,
    /// The first block after the attempt.
    pub deadline: u64,
}

impl Attempt {
    pub fn leader(&self) -> ParticipantId {
        ParticipantId(self.leader)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct KeyEvent {
    pub attempt: Attempt,
    #[serde(default)]
    pub rules: AttemptRules,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct AttemptRules {
    #[serde(default)]
    pub attempt_blocks: u64,
}

impl KeyEvent {
    /// Whether at block `height` less than half of the current attempt is left.
    pub fn attempt_half_over(&self, height: u64) -> bool {
        let left = self.attempt.deadline.saturating_sub(height);
        left.saturating_mul(2) < self.rules.attempt_blocks
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub enum ContractState {
    NotInitialized,
    Initializing {
        candidates: Vec<Member>,
        threshold: usize,
        #[serde(default)]
        pk_votes: Vec<PkVote>,
        key_event: KeyEvent,
    },
    Running {
        epoch: u64,
        participants: Vec<Member>,
        threshold: usize,
        public_key: String,
        #[serde(default)]
        candidates: Vec<Candidate>,
    },
    Resharing {
        old_epoch: u64,
        new_epoch: u64,
        old_participants: Vec<Member>,
        new_participants: Vec<Member>,
        threshold: usize,
        public_key: String,
        key_event: KeyEvent,
        #[serde(default)]
        finished_votes: Vec<String>,
    },
}

impl ContractState {
    /// The root public key, once there is one.
    pub fn public_key(&self) -> Option<PublicKey> {
        match self {
            ContractState::Running { public_key, .. }
            | ContractState::Resharing { public_key, .. } => PublicKey::parse(public_key).ok(),
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            ContractState::NotInitialized => "NotInitialized",
            ContractState::Initializing { .. } => "Initializing",
            ContractState::Running { .. } => "Running",
            ContractState::Resharing { .. } => "Resharing",
        }
    }
}

/// `account`'s entry in `members`.
pub fn find<'a>(members: &'a [Member], account: &str) -> Option<&'a Member> {
    members.iter().find(|m| m.account_id == account)
}

/// The members' participant ids, sorted.
pub fn ids(members: &[Member]) -> Vec<ParticipantId> {
    let mut ids: Vec<_> = members.iter().map(Member::participant).collect();
    ids.sort_unstable();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    const TLS: &str = "ed25519:6E8sCci9badyRkXb3JoRpBj5p8C6Tw41ELDZoiihKEtp";

    #[test]
    fn parses_every_state_shape() {
        let member = format!(
            r#"{{"account_id":"n0.near","id":0,"url":"127.0.0.1:1","tls_public_key":"{TLS}","sign_public_key":"{TLS}"}}"#
        );
        let running = format!(
            r#"{{"Running":{{"epoch":3,"participants":[{member}],"threshold":2,"public_key":"secp256k1:x","candidates":[{{"account_id":"n9.near","url":"u","tls_public_key":"{TLS}","sign_public_key":"{TLS}"}}],"join_votes":[],"leave_votes":[]}}}}"#
        );
        let state: ContractState = serde_json::from_str(&running).unwrap();
        let ContractState::Running {
            epoch,
            participants,
            ..
        } = &state
        else {
            panic!("not running: {state:?}")
        };
        assert_eq!(*epoch, 3);
        assert_eq!(participants[0].participant(), ParticipantId(0));
        let peer = participants[0].peer().expect("an ed25519 TLS key");
        assert_eq!(format_tls_key(&peer.tls_key), TLS);
        let initializing = format!(
            r#"{{"Initializing":{{"candidates":[{member}],"threshold":2,"pk_votes":[{{"public_key":"secp256k1:x","voters":["n0.near"]}}],"key_event":{{"started_at":5,"rules":{{}},"attempt":{{"id":1,"leader":0,"deadline":40}}}}}}}}"#
        );
        assert!(matches!(
            serde_json::from_str(&initializing).unwrap(),
            ContractState::Initializing { .. }
        ));
        assert_eq!(
            serde_json::from_str::<ContractState>(r#""NotInitialized""#).unwrap(),
            ContractState::NotInitialized
        );
        let resharing = format!(
            r#"{{"Resharing":{{"old_epoch":0,"new_epoch":3,"old_participants":[{member}],"new_participants":[{member}],"threshold":1,"public_key":"secp256k1:x","key_event":{{"attempt":{{"id":2,"leader":0,"deadline":99}}}},"finished_votes":[],"cancel_votes":[],"candidates":[]}}}}"#
        );
        let ContractState::Resharing {
            new_epoch,
            key_event,
            ..
        } = serde_json::from_str(&resharing).unwrap()
        else {
            panic!("not resharing")
        };
        assert_eq!((new_epoch, key_event.attempt.id), (3, 2));
    }

    #[test]
    fn a_bad_tls_key_is_no_peer() {
        assert!(parse_tls_key("secp256k1:abc").is_none());
        assert!(parse_tls_key("garbage").is_none());
    }
}
