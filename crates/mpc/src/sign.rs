//! The signing step: one round, leader-aggregated.
//!
//! Each participant rerandomizes its presignature share for the request ([`crate::rerandomize`])
//! and sends its share `s_i = λ_i·(z·k'_i + r·sigma'_i)` to the leader. The leader sums the
//! shares, normalizes `s` to low-s (flipping `R` with it), and verifies the result under the
//! derived key before returning it: a signature that does not verify never leaves.
//!
//! This step is ours rather than `cait-sith`'s `sign`: that one broadcasts every share to
//! everyone, makes every participant verify, and returns `R` un-flipped after normalizing `s`,
//! so the caller would have to verify a second time to learn the recovery id. Here followers
//! send one 32-byte message and are done, and the leader verifies once.

use std::collections::BTreeMap;
use std::time::Instant;

use chainsig_primitives::{
    derive_public_key, EcdsaPayload, EcdsaSignature, ParticipantId, PublicKey, Tweak,
};
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::point::AffineCoordinates;
use k256::elliptic_curve::PrimeField;
use k256::{AffinePoint, FieldBytes, Scalar, U256};

use crate::error::ProtocolError;
use crate::keygen::{check_set, KeyShare};
use crate::presign::Presignature;
use crate::protocol::{BoxedProtocol, Deadline, Limits, Outgoing, Protocol, Recipient, Step};
use crate::rerandomize::{delta, rerandomize, RerandomizationInputs};

/// What the request fixes: the payload, the caller's tweak and the public entropy of the
/// block that carried the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignArgs {
    pub payload: EcdsaPayload,
    pub tweak: Tweak,
    pub entropy: [u8; 32],
}

/// Default limits: followers send one scalar.
pub fn sign_limits() -> Limits {
    Limits {
        timeout: std::time::Duration::from_secs(10),
        max_message_bytes: 32,
        max_bytes_per_peer: 32,
    }
}

/// The Lagrange coefficient of `me` for interpolating at zero over `participants`, with
/// participant `i` at the point `i + 1` (the convention of `cait-sith`'s sharings).
fn lagrange(me: ParticipantId, participants: &[ParticipantId]) -> Scalar {
    let x = |p: ParticipantId| Scalar::from(u64::from(p.0) + 1);
    let (mut numerator, mut denominator) = (Scalar::ONE, Scalar::ONE);
    for &q in participants.iter().filter(|&&q| q != me) {
        numerator *= x(q);
        denominator *= x(q) - x(me);
    }
    numerator * denominator.invert().expect("participants are distinct")
}

enum Role {
    Leader {
        derived_key: PublicKey,
        shares: BTreeMap<ParticipantId, Option<Scalar>>,
    },
    Follower {
        leader: ParticipantId,
        sent: bool,
    },
}

struct SignProtocol {
    role: Role,
    my_share: Scalar,
    big_r: AffinePoint,
    payload: EcdsaPayload,
    deadline: Deadline,
    limits: Limits,
    failed: Option<ProtocolError>,
    done: bool,
}

/// Signs `args.payload` under the key derived with `args.tweak`, consuming `presignature`.
/// The leader's output is the verified signature; followers output `None`.
pub fn sign(
    key: &KeyShare,
    presignature: Presignature,
    leader: ParticipantId,
    args: &SignArgs,
    limits: Limits,
) -> Result<BoxedProtocol<Option<EcdsaSignature>>, ProtocolError> {
    let participants = check_set(&presignature.participants, key.me, presignature.threshold)?;
    if presignature.public_key != key.public_key {
        return Err(ProtocolError::BadParameters(
            "the presignature was made for another key".into(),
        ));
    }
    if participants.binary_search(&leader).is_err() {
        return Err(ProtocolError::BadParameters(
            "the leader is not among the presignature's participants".into(),
        ));
    }
    let delta = delta(&RerandomizationInputs {
        entropy: &args.entropy,
        root_public_key: &key.public_key,
        tweak: &args.tweak,
        payload: &args.payload,
        big_r: &presignature.big_r,
        participants: &participants,
    })?;
    let fresh = rerandomize(
        &presignature.big_r,
        &presignature.k,
        &presignature.sigma,
        &args.tweak,
        &delta,
    );
    drop(presignature);
    let r = <Scalar as Reduce<U256>>::reduce_bytes(&fresh.big_r.x());
    let my_share =
        lagrange(key.me, &participants) * (args.payload.to_scalar() * fresh.k + r * fresh.sigma);
    let role = if leader == key.me {
        let derived = derive_public_key(&key.public_key, &args.tweak)
            .and_then(PublicKey::from_affine)
            .map_err(|e| ProtocolError::BadParameters(e.to_string()))?;
        Role::Leader {
            derived_key: derived,
            shares: participants
                .iter()
                .filter(|&&p| p != key.me)
                .map(|&p| (p, None))
                .collect(),
        }
    } else {
        Role::Follower {
            leader,
            sent: false,
        }
    };
    Ok(Box::new(SignProtocol {
        role,
        my_share,
        big_r: fresh.big_r,
        payload: args.payload,
        deadline: Deadline::new(limits.timeout),
        limits,
        failed: None,
        done: false,
    }))
}

impl SignProtocol {
    fn fail(&mut self, error: ProtocolError) -> ProtocolError {
        self.failed = Some(error.clone());
        error
    }

    fn check_state(&self) -> Result<(), ProtocolError> {
        match (&self.failed, self.done) {
            (Some(error), _) => Err(error.clone()),
            (None, true) => Err(ProtocolError::AlreadyFinished),
            (None, false) => Ok(()),
        }
    }

    fn accept_share(&mut self, from: ParticipantId, message: &[u8]) -> Result<(), ProtocolError> {
        let Role::Leader { shares, .. } = &mut self.role else {
            return Err(ProtocolError::Malformed {
                peer: from,
                reason: "only the leader receives signature shares".into(),
            });
        };
        let Some(slot) = shares.get_mut(&from) else {
            return Err(ProtocolError::UnknownPeer(from));
        };
        if message.len() > self.limits.max_message_bytes {
            return Err(ProtocolError::Oversized {
                peer: from,
                size: message.len(),
                limit: self.limits.max_message_bytes,
            });
        }
        if slot.is_some() {
            return Err(ProtocolError::Duplicate { peer: from });
        }
        let bytes: [u8; 32] = message.try_into().map_err(|_| ProtocolError::Malformed {
            peer: from,
            reason: format!("a signature share is 32 bytes, got {}", message.len()),
        })?;
        let share: Option<Scalar> = Scalar::from_repr(FieldBytes::from(bytes)).into();
        *slot = Some(share.ok_or_else(|| ProtocolError::Malformed {
            peer: from,
            reason: "signature share is not below the group order".into(),
        })?);
        Ok(())
    }

    fn combine(&mut self) -> Option<Result<EcdsaSignature, ProtocolError>> {
        let Role::Leader {
            derived_key,
            shares,
        } = &self.role
        else {
            return None;
        };
        let mut s = self.my_share;
        for share in shares.values() {
            s += (*share)?;
        }
        Some(
            EcdsaSignature::normalize(self.big_r, s, derived_key, &self.payload).map_err(|e| {
                ProtocolError::Failed {
                    reason: format!("combined signature rejected: {e}"),
                    suspect: None,
                }
            }),
        )
    }

    fn missing_shares(&self) -> Vec<ParticipantId> {
        match &self.role {
            Role::Leader { shares, .. } => shares
                .iter()
                .filter(|(_, share)| share.is_none())
                .map(|(&p, _)| p)
                .collect(),
            Role::Follower { .. } => Vec::new(),
        }
    }
}

impl Protocol for SignProtocol {
    type Output = Option<EcdsaSignature>;

    fn receive(&mut self, from: ParticipantId, message: &[u8]) -> Result<(), ProtocolError> {
        self.check_state()?;
        self.accept_share(from, message)
            .map_err(|error| self.fail(error))
    }

    fn poll(&mut self, now: Instant) -> Result<Step<Self::Output>, ProtocolError> {
        self.check_state()?;
        if let Role::Follower { leader, sent } = &mut self.role {
            if !*sent {
                *sent = true;
                return Ok(Step::Send(Outgoing {
                    to: Recipient::One(*leader),
                    payload: self.my_share.to_repr().to_vec(),
                }));
            }
            self.done = true;
            return Ok(Step::Done(None));
        }
        match self.combine() {
            Some(Ok(signature)) => {
                self.done = true;
                Ok(Step::Done(Some(signature)))
            }
            Some(Err(error)) => Err(self.fail(error)),
            None => match self.deadline.expired(now) {
                Some(after) => {
                    let waiting_on = self.missing_shares();
                    Err(self.fail(ProtocolError::Timeout { after, waiting_on }))
                }
                None => Ok(Step::Wait),
            },
        }
    }
}
