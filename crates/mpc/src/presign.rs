//! Presignatures: two triples and the key share become one participant's share of a nonce
//! `k` (with public `R = k⁻¹·G`) and of `sigma = k·x`. One presignature makes exactly one
//! signature; [`Presignature`] cannot be cloned and [`crate::sign`] consumes it by value.

use std::fmt;

use cait_sith::{PresignArguments, PresignOutput};
use chainsig_primitives::ParticipantId;
use k256::{AffinePoint, Scalar, Secp256k1};
use serde::{Deserialize, Serialize};

use crate::adapter::{to_cs, to_cs_list, CaitSith};
use crate::error::ProtocolError;
use crate::keygen::{check_set, KeyShare};
use crate::protocol::{BoxedProtocol, Limits};
use crate::triples::Triple;

/// One participant's share of a presignature. Secret; `Debug` shows only the public part.
#[derive(Serialize, Deserialize, PartialEq, Eq)]
pub struct Presignature {
    pub big_r: AffinePoint,
    pub(crate) k: Scalar,
    pub(crate) sigma: Scalar,
    /// Who made it, sorted; exactly these participants sign with it.
    pub participants: Vec<ParticipantId>,
    pub threshold: usize,
    /// The root key it was made for.
    pub public_key: AffinePoint,
}

impl fmt::Debug for Presignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presignature")
            .field("big_r", &self.big_r)
            .field("participants", &self.participants)
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

/// Default limits: presign sends two rounds of one or two scalars.
pub fn presign_limits() -> Limits {
    Limits {
        timeout: std::time::Duration::from_secs(30),
        max_message_bytes: 512,
        max_bytes_per_peer: 2048,
    }
}

fn check_inputs(
    sorted: &[ParticipantId],
    key: &KeyShare,
    triples: [&Triple; 2],
) -> Result<(), ProtocolError> {
    let bad = |reason: &str| Err(ProtocolError::BadParameters(reason.into()));
    let holds = |set: &[ParticipantId]| sorted.iter().all(|p| set.binary_search(p).is_ok());
    if !holds(&key.participants) {
        return bad("some presign participants hold no share of the key");
    }
    for triple in triples {
        if triple.threshold != key.threshold {
            return bad("a triple's threshold differs from the key's");
        }
        if !holds(&triple.participants) {
            return bad("some presign participants hold no share of a triple");
        }
    }
    if triples[0].big_a == triples[1].big_a {
        return bad("the two triples are the same triple");
    }
    Ok(())
}

/// Makes a presignature among `participants` from two triples (consumed) and the key share.
pub fn presign(
    participants: &[ParticipantId],
    key: &KeyShare,
    triple0: Triple,
    triple1: Triple,
    limits: Limits,
) -> Result<BoxedProtocol<Presignature>, ProtocolError> {
    let me = key.me;
    let sorted = check_set(participants, me, key.threshold)?;
    check_inputs(&sorted, key, [&triple0, &triple1])?;
    let threshold = key.threshold;
    let public_key = key.public_key;
    let args = PresignArguments {
        triple0: triple0.into_cait_sith(),
        triple1: triple1.into_cait_sith(),
        keygen_out: key.cait_sith(),
        threshold,
    };
    let inner = cait_sith::presign::<Secp256k1>(&to_cs_list(&sorted), to_cs(me), args)
        .map_err(|e| ProtocolError::BadParameters(e.to_string()))?;
    let set = sorted.clone();
    Ok(Box::new(CaitSith::new(
        inner,
        &sorted,
        me,
        limits,
        move |out: PresignOutput<Secp256k1>| {
            Ok(Presignature {
                big_r: out.big_r,
                k: out.k,
                sigma: out.sigma,
                participants: set,
                threshold,
                public_key,
            })
        },
    )))
}
