//! ECDSA signatures as the network returns them **(compat)**:
//! `{"scheme":"Secp256k1","big_r":{"affine_point":"<33-byte hex>"},"s":{"scalar":"<hex>"},"recovery_id":0|1}`.
//!
//! A signature here is always *consistent*: `s` is low, `big_r` is the actual point
//! `R = (z/s)·G + (r/s)·Q`, and `recovery_id` is the parity of `R.y`. So `(r, s, recovery_id)`
//! is exactly what Ethereum's `ecrecover` and Bitcoin's DER encoding want.

use k256::ecdsa::{RecoveryId, VerifyingKey};
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::point::AffineCoordinates;
use k256::elliptic_curve::scalar::IsHigh;
use k256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use k256::elliptic_curve::PrimeField;
use k256::{AffinePoint, EncodedPoint, FieldBytes, ProjectivePoint, Scalar, U256};
use serde::{Deserialize, Serialize};

use crate::error::{decode_hex_array, Error, Result};
use crate::public_key::PublicKey;
use crate::request::EcdsaPayload;

/// A low-s ECDSA signature over secp256k1 with its nonce point and recovery id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcdsaSignature {
    big_r: AffinePoint,
    s: Scalar,
    recovery_id: u8,
}

impl EcdsaSignature {
    /// Takes a signature apart as received; checks its form (point on the curve and not
    /// infinity, `s` non-zero and low, recovery id 0 or 1) but not what it signs.
    pub fn from_parts(big_r: AffinePoint, s: Scalar, recovery_id: u8) -> Result<Self> {
        if big_r == AffinePoint::IDENTITY {
            return Err(Error::PointAtInfinity);
        }
        if bool::from(s.is_zero()) {
            return Err(Error::ZeroScalar);
        }
        if bool::from(s.is_high()) {
            return Err(Error::HighS);
        }
        if recovery_id > 1 {
            return Err(Error::RecoveryId(recovery_id));
        }
        Ok(Self {
            big_r,
            s,
            recovery_id,
        })
    }

    /// Builds the consistent, low-s form of a raw `(R, s)` pair and checks that it signs
    /// `payload` under `public_key`. Negating `s` negates the effective nonce point, so `R`
    /// flips with it; the recovery id then is simply the parity of `R.y`.
    pub fn normalize(
        big_r: AffinePoint,
        s: Scalar,
        public_key: &PublicKey,
        payload: &EcdsaPayload,
    ) -> Result<Self> {
        let (big_r, s) = if bool::from(s.is_high()) {
            (-big_r, -s)
        } else {
            (big_r, s)
        };
        let recovery_id = u8::from(bool::from(big_r.y_is_odd()));
        let signature = Self::from_parts(big_r, s, recovery_id)?;
        signature.verify(public_key, payload)?;
        Ok(signature)
    }

    pub fn big_r(&self) -> &AffinePoint {
        &self.big_r
    }

    pub fn s(&self) -> &Scalar {
        &self.s
    }

    pub fn recovery_id(&self) -> u8 {
        self.recovery_id
    }

    /// `r = x(R) mod n`.
    pub fn r(&self) -> Scalar {
        <Scalar as Reduce<U256>>::reduce_bytes(&self.big_r.x())
    }

    /// Full verification: `R == (z/s)·G + (r/s)·Q`, which implies the textbook check
    /// `x(R) ≡ r`, plus the recovery id matching `R`. An `R` whose x is not below n (odds
    /// about 2^-128) would need recovery ids 2 and 3, which no client accepts: refused.
    pub fn verify(&self, public_key: &PublicKey, payload: &EcdsaPayload) -> Result<()> {
        if self.r().to_repr() != self.big_r.x() {
            return Err(Error::BadSignature);
        }
        let s_inv: Scalar = Option::from(self.s.invert()).ok_or(Error::ZeroScalar)?;
        let z = payload.to_scalar();
        let expected = ProjectivePoint::GENERATOR * (z * s_inv)
            + ProjectivePoint::from(*public_key.as_affine()) * (self.r() * s_inv);
        if expected.to_affine() != self.big_r {
            return Err(Error::BadSignature);
        }
        if self.recovery_id != u8::from(bool::from(self.big_r.y_is_odd())) {
            return Err(Error::BadSignature);
        }
        Ok(())
    }

    /// The public key that `(r, s, recovery_id)` recovers to for `payload`, as `ecrecover` does.
    pub fn recover(&self, payload: &EcdsaPayload) -> Result<PublicKey> {
        let recovery_id =
            RecoveryId::from_byte(self.recovery_id).ok_or(Error::RecoveryId(self.recovery_id))?;
        let key =
            VerifyingKey::recover_from_prehash(payload.as_bytes(), &self.to_k256()?, recovery_id)
                .map_err(|_| Error::BadSignature)?;
        PublicKey::from_affine(*key.as_affine())
    }

    /// The `(r, s)` pair as `k256`'s signature type.
    pub fn to_k256(&self) -> Result<k256::ecdsa::Signature> {
        k256::ecdsa::Signature::from_scalars(self.r(), self.s).map_err(|_| Error::BadSignature)
    }

    /// 64 bytes `r ‖ s`, big-endian.
    pub fn to_rs_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.r().to_bytes());
        out[32..].copy_from_slice(&self.s.to_bytes());
        out
    }
}

/// The response `respond` carries and `sign` returns, tagged by scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scheme")]
pub enum SignatureResponse {
    Secp256k1(EcdsaSignature),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AffinePointJson {
    affine_point: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScalarJson {
    scalar: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EcdsaSignatureJson {
    big_r: AffinePointJson,
    s: ScalarJson,
    recovery_id: u8,
}

fn parse_point(hex_str: &str) -> Result<AffinePoint> {
    let bytes = decode_hex_array::<33>(hex_str)?;
    let encoded = EncodedPoint::from_bytes(bytes).map_err(|_| Error::PointNotOnCurve)?;
    Option::from(AffinePoint::from_encoded_point(&encoded)).ok_or(Error::PointNotOnCurve)
}

fn parse_scalar(hex_str: &str) -> Result<Scalar> {
    let bytes = decode_hex_array::<32>(hex_str)?;
    Option::from(Scalar::from_repr(FieldBytes::from(bytes))).ok_or(Error::ScalarOutOfRange)
}

impl Serialize for EcdsaSignature {
    /// Upper-case hex, as NEAR's MPC network has always answered.
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> core::result::Result<S::Ok, S::Error> {
        EcdsaSignatureJson {
            big_r: AffinePointJson {
                affine_point: hex::encode_upper(self.big_r.to_encoded_point(true).as_bytes()),
            },
            s: ScalarJson {
                scalar: hex::encode_upper(self.s.to_bytes()),
            },
            recovery_id: self.recovery_id,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for EcdsaSignature {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> core::result::Result<Self, D::Error> {
        let json = EcdsaSignatureJson::deserialize(deserializer)?;
        let parsed = parse_point(&json.big_r.affine_point).and_then(|big_r| {
            let s = parse_scalar(&json.s.scalar)?;
            Self::from_parts(big_r, s, json.recovery_id)
        });
        parsed.map_err(serde::de::Error::custom)
    }
}
