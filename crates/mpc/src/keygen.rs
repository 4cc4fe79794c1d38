//! The root key: distributed generation, refresh (new shares, same set) and reshare (new set
//! and threshold). The public key never changes after keygen; only the shares do.

use std::fmt;

use cait_sith::KeygenOutput;
use chainsig_primitives::ParticipantId;
use k256::{AffinePoint, Scalar, Secp256k1};
use serde::{Deserialize, Serialize};

use crate::adapter::{to_cs, to_cs_list, CaitSith};
use crate::error::ProtocolError;
use crate::protocol::{BoxedProtocol, Limits};

/// One participant's share of the root key. Secret: the node stores it encrypted, and its
/// `Debug` output leaves the share out.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyShare {
    pub me: ParticipantId,
    /// The participants that hold shares of this sharing, sorted.
    pub participants: Vec<ParticipantId>,
    pub threshold: usize,
    pub public_key: AffinePoint,
    private_share: Scalar,
}

impl KeyShare {
    pub fn private_share(&self) -> &Scalar {
        &self.private_share
    }

    pub(crate) fn cait_sith(&self) -> KeygenOutput<Secp256k1> {
        KeygenOutput {
            private_share: self.private_share,
            public_key: self.public_key,
        }
    }
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("me", &self.me)
            .field("participants", &self.participants)
            .field("threshold", &self.threshold)
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

/// Default limits for keygen, refresh and reshare: their messages are small commitments and
/// proofs, growing with the number of participants.
pub fn key_limits(participants: usize) -> Limits {
    Limits {
        timeout: std::time::Duration::from_secs(60),
        max_message_bytes: 4096 + 256 * participants,
        max_bytes_per_peer: 16 * (4096 + 256 * participants),
    }
}

/// Checks a participant set and threshold, returning the set sorted.
pub(crate) fn check_set(
    participants: &[ParticipantId],
    me: ParticipantId,
    threshold: usize,
) -> Result<Vec<ParticipantId>, ProtocolError> {
    let mut sorted = participants.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let bad = |reason: &str| Err(ProtocolError::BadParameters(reason.into()));
    if sorted.len() != participants.len() {
        return bad("participant list has duplicates");
    }
    if sorted.len() < 2 {
        return bad("a protocol needs at least two participants");
    }
    if threshold < 2 {
        return bad("threshold must be at least 2: with 1, every share is the whole key");
    }
    if threshold > sorted.len() {
        return bad("threshold exceeds the number of participants");
    }
    if !sorted.contains(&me) {
        return bad("this node is not among the participants");
    }
    Ok(sorted)
}

fn key_share(
    me: ParticipantId,
    participants: Vec<ParticipantId>,
    threshold: usize,
    public_key: AffinePoint,
    private_share: Scalar,
) -> KeyShare {
    KeyShare {
        me,
        participants,
        threshold,
        public_key,
        private_share,
    }
}

/// Distributed key generation: every participant ends with a share of a fresh root key.
pub fn keygen(
    participants: &[ParticipantId],
    me: ParticipantId,
    threshold: usize,
    limits: Limits,
) -> Result<BoxedProtocol<KeyShare>, ProtocolError> {
    let sorted = check_set(participants, me, threshold)?;
    let inner = cait_sith::keygen::<Secp256k1>(&to_cs_list(&sorted), to_cs(me), threshold)
        .map_err(|e| ProtocolError::BadParameters(e.to_string()))?;
    let set = sorted.clone();
    Ok(Box::new(CaitSith::new(
        inner,
        &sorted,
        me,
        limits,
        move |out: KeygenOutput<Secp256k1>| {
            Ok(key_share(
                me,
                set,
                threshold,
                out.public_key,
                out.private_share,
            ))
        },
    )))
}

/// Fresh shares of the same key for the same participants and threshold.
pub fn refresh(share: &KeyShare, limits: Limits) -> Result<BoxedProtocol<KeyShare>, ProtocolError> {
    reshare(
        &share.participants,
        share.threshold,
        &share.participants,
        share.threshold,
        share.me,
        Some(share),
        share.public_key,
        limits,
    )
}

/// Moves the key to a new participant set and threshold. Members of the new set that held
/// a share pass it in; newcomers pass `None`. Members leaving do not take part. At least
/// `old_threshold` old members must be in the new set.
#[allow(clippy::too_many_arguments)]
pub fn reshare(
    old_participants: &[ParticipantId],
    old_threshold: usize,
    new_participants: &[ParticipantId],
    new_threshold: usize,
    me: ParticipantId,
    old_share: Option<&KeyShare>,
    public_key: AffinePoint,
    limits: Limits,
) -> Result<BoxedProtocol<KeyShare>, ProtocolError> {
    let new_sorted = check_set(new_participants, me, new_threshold)?;
    if let Some(share) = old_share {
        if share.public_key != public_key || share.me != me {
            return Err(ProtocolError::BadParameters(
                "the old share belongs to another key or participant".into(),
            ));
        }
    }
    let inner = cait_sith::reshare::<Secp256k1>(
        &to_cs_list(old_participants),
        old_threshold,
        &to_cs_list(&new_sorted),
        new_threshold,
        to_cs(me),
        old_share.map(|share| share.private_share),
        public_key,
    )
    .map_err(|e| ProtocolError::BadParameters(e.to_string()))?;
    let set = new_sorted.clone();
    Ok(Box::new(CaitSith::new(
        inner,
        &new_sorted,
        me,
        limits,
        move |private_share: Scalar| {
            Ok(key_share(me, set, new_threshold, public_key, private_share))
        },
    )))
}
