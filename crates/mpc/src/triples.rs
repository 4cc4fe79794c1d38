//! Beaver triples: key-independent preprocessing, generated in the background. A presignature
//! consumes two; a triple used twice would leak the key, so [`Triple`] cannot be cloned and
//! is consumed by value.

use std::fmt;

use cait_sith::triples::{TripleGenerationOutput, TriplePub, TripleShare};
use chainsig_primitives::ParticipantId;
use k256::{AffinePoint, Scalar, Secp256k1};
use serde::{Deserialize, Serialize};

use crate::adapter::{from_cs, to_cs, to_cs_list, CaitSith};
use crate::batch::Batch;
use crate::error::ProtocolError;
use crate::keygen::check_set;
use crate::protocol::{BoxedProtocol, Limits};

/// One participant's share of a committed Beaver triple `(a, b, c = a·b)` together with the
/// public commitments `(A, B, C)`. Secret; `Debug` shows only the public part.
#[derive(Serialize, Deserialize, PartialEq, Eq)]
pub struct Triple {
    share: [Scalar; 3],
    pub big_a: AffinePoint,
    pub big_b: AffinePoint,
    pub big_c: AffinePoint,
    /// Who generated it, sorted: the only participants that hold shares of it.
    pub participants: Vec<ParticipantId>,
    pub threshold: usize,
}

impl Triple {
    fn from_cait_sith((share, public): TripleGenerationOutput<Secp256k1>) -> Self {
        let mut participants: Vec<ParticipantId> =
            public.participants.into_iter().map(from_cs).collect();
        participants.sort_unstable();
        Self {
            share: [share.a, share.b, share.c],
            big_a: public.big_a,
            big_b: public.big_b,
            big_c: public.big_c,
            participants,
            threshold: public.threshold,
        }
    }

    pub(crate) fn into_cait_sith(self) -> (TripleShare<Secp256k1>, TriplePub<Secp256k1>) {
        let [a, b, c] = self.share;
        let public = TriplePub {
            big_a: self.big_a,
            big_b: self.big_b,
            big_c: self.big_c,
            participants: to_cs_list(&self.participants),
            threshold: self.threshold,
        };
        (TripleShare { a, b, c }, public)
    }
}

impl fmt::Debug for Triple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Triple")
            .field("big_a", &self.big_a)
            .field("participants", &self.participants)
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

/// Default limits for one triple. An honest peer sends another at most about 91 KB in all,
/// whatever the number of participants, in messages of at most about 40 KB (measured by
/// `tests/limits.rs`); these leave more than twice that room.
pub fn triple_limits(_participants: usize) -> Limits {
    const HONEST_PER_PEER: usize = 96 * 1024;
    Limits {
        timeout: std::time::Duration::from_secs(120),
        max_message_bytes: HONEST_PER_PEER,
        max_bytes_per_peer: 4 * HONEST_PER_PEER,
    }
}

fn one_triple(
    participants: &[ParticipantId],
    me: ParticipantId,
    threshold: usize,
    limits: Limits,
) -> Result<CaitSith<TripleGenerationOutput<Secp256k1>, Triple>, ProtocolError> {
    let inner = cait_sith::triples::generate_triple::<Secp256k1>(
        &to_cs_list(participants),
        to_cs(me),
        threshold,
    )
    .map_err(|e| ProtocolError::BadParameters(e.to_string()))?;
    Ok(CaitSith::new(inner, participants, me, limits, |out| {
        Ok(Triple::from_cait_sith(out))
    }))
}

/// Generates one triple among `participants`, shared with `threshold`.
pub fn generate_triple(
    participants: &[ParticipantId],
    me: ParticipantId,
    threshold: usize,
    limits: Limits,
) -> Result<BoxedProtocol<Triple>, ProtocolError> {
    let sorted = check_set(participants, me, threshold)?;
    Ok(Box::new(one_triple(&sorted, me, threshold, limits)?))
}

/// Generates `count` triples as one protocol instance: one message per peer per step
/// instead of `count`. `limits` are those of one triple; the batch scales them.
pub fn generate_triples(
    participants: &[ParticipantId],
    me: ParticipantId,
    threshold: usize,
    count: usize,
    limits: Limits,
) -> Result<BoxedProtocol<Vec<Triple>>, ProtocolError> {
    let sorted = check_set(participants, me, threshold)?;
    let instances = (0..count)
        .map(|_| one_triple(&sorted, me, threshold, limits))
        .collect::<Result<Vec<_>, _>>()?;
    let batch_limit = limits.scaled(count).max_message_bytes;
    Ok(Box::new(Batch::new(instances, batch_limit)?))
}

/// Triples from a trusted dealer, who learns them all: only for benchmarks and tests.
#[cfg(feature = "insecure-dealer")]
pub fn deal_insecure(
    participants: &[ParticipantId],
    threshold: usize,
) -> std::collections::BTreeMap<ParticipantId, Triple> {
    let (public, shares) = cait_sith::triples::deal::<Secp256k1>(
        &mut rand_core::OsRng,
        &to_cs_list(participants),
        threshold,
    );
    participants
        .iter()
        .zip(shares)
        .map(|(&p, share)| (p, Triple::from_cait_sith((share, public.clone()))))
        .collect()
}
