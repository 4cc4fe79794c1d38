//! Presignature rerandomization.
//!
//! A presignature made before the request is known, combined with additive key derivation,
//! is open to related-key attacks (Groth–Shoup 2021): a requester who could pick the tweak
//! after seeing `R` could forge. So once the request is fixed, every participant scales the
//! presignature by a `delta` that nobody could choose: it hashes public entropy the requester
//! did not control (the block's random value) with everything the signature commits to.
//!
//! `R' = delta·R`, `k' = k/delta`, `sigma' = (sigma + tweak·k)/delta`, so that
//! `R' = k'⁻¹·G` and `sigma' = k'·(x + tweak)`: a presignature for the derived key.

use chainsig_primitives::{EcdsaPayload, ParticipantId, Tweak};
use hkdf::Hkdf;
use k256::elliptic_curve::bigint::U512;
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::{AffinePoint, Scalar, WideBytes};
use sha2::Sha256;

use crate::error::ProtocolError;

/// Domain separation of our delta derivation.
pub const RERANDOMIZATION_DOMAIN: &[u8] = b"chainsig/v1/presignature-rerandomization";

/// What `delta` is derived from; every participant must pass the same values.
pub struct RerandomizationInputs<'a> {
    pub entropy: &'a [u8; 32],
    pub root_public_key: &'a AffinePoint,
    pub tweak: &'a Tweak,
    pub payload: &'a EcdsaPayload,
    pub big_r: &'a AffinePoint,
    /// Sorted.
    pub participants: &'a [ParticipantId],
}

/// `delta = HKDF-SHA256(salt = domain, ikm = entropy, info = pk ‖ tweak ‖ payload ‖ R ‖ ids)`,
/// 64 bytes reduced mod n (bias below 2^-256).
pub fn delta(inputs: &RerandomizationInputs<'_>) -> Result<Scalar, ProtocolError> {
    let mut info = Vec::with_capacity(33 + 32 + 32 + 33 + 4 + 4 * inputs.participants.len());
    info.extend_from_slice(inputs.root_public_key.to_encoded_point(true).as_bytes());
    info.extend_from_slice(&inputs.tweak.to_bytes());
    info.extend_from_slice(inputs.payload.as_bytes());
    info.extend_from_slice(inputs.big_r.to_encoded_point(true).as_bytes());
    info.extend_from_slice(&(inputs.participants.len() as u32).to_be_bytes());
    for participant in inputs.participants {
        info.extend_from_slice(&participant.to_be_bytes());
    }
    let mut okm = WideBytes::default();
    Hkdf::<Sha256>::new(Some(RERANDOMIZATION_DOMAIN), inputs.entropy)
        .expand(&info, &mut okm)
        .map_err(|_| ProtocolError::BadParameters("HKDF output length".into()))?;
    let delta = <Scalar as Reduce<U512>>::reduce_bytes(&okm);
    if bool::from(delta.is_zero()) {
        return Err(ProtocolError::BadParameters(
            "rerandomization produced zero".into(),
        ));
    }
    Ok(delta)
}

/// One participant's presignature share, rerandomized: `(R', k', sigma')`.
pub struct Rerandomized {
    pub big_r: AffinePoint,
    pub k: Scalar,
    pub sigma: Scalar,
}

pub fn rerandomize(
    big_r: &AffinePoint,
    k: &Scalar,
    sigma: &Scalar,
    tweak: &Tweak,
    delta: &Scalar,
) -> Rerandomized {
    let delta_inv = delta.invert().expect("delta is non-zero");
    Rerandomized {
        big_r: (k256::ProjectivePoint::from(*big_r) * delta).to_affine(),
        k: *k * delta_inv,
        sigma: (sigma + tweak.as_scalar() * k) * delta_inv,
    }
}
