//! Key derivation **(compat)**: every (predecessor account, path) pair gets its own key,
//! `derived = root + tweak·G` with
//! `tweak = SHA3-256("near-mpc-recovery v0.1.0 epsilon derivation:" ‖ account ‖ "," ‖ path)`.
//! Existing clients compute exactly this, so not a byte of it may change.

use k256::elliptic_curve::PrimeField;
use k256::{AffinePoint, FieldBytes, ProjectivePoint, Scalar};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Sha3_256};

use crate::error::{decode_hex_array, Error, Result};

/// The prefix NEAR's chain signatures hash before the account id and path.
pub const TWEAK_DERIVATION_PREFIX: &str = "near-mpc-recovery v0.1.0 epsilon derivation:";

/// The longest derivation path the system accepts, in bytes. Long enough for any real use
/// (BIP-32 style paths, JSON blobs of a few fields), short enough to bound contract storage.
pub const MAX_PATH_LEN: usize = 1024;

/// The additive tweak of one (account, path) pair: a secp256k1 scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tweak(Scalar);

impl core::hash::Hash for Tweak {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.to_bytes().hash(state);
    }
}

impl Tweak {
    /// Reads a tweak from its 32 big-endian bytes; a value ≥ n is an error, never reduced.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self> {
        Option::from(Scalar::from_repr(FieldBytes::from(bytes)))
            .map(Self)
            .ok_or(Error::ScalarOutOfRange)
    }

    pub fn from_hex(s: &str) -> Result<Self> {
        Self::from_bytes(decode_hex_array::<32>(s)?)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes().into()
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }

    pub fn as_scalar(&self) -> &Scalar {
        &self.0
    }
}

impl Serialize for Tweak {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> core::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Tweak {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> core::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// The raw SHA3-256 digest behind a tweak, before it is read as a scalar.
pub fn tweak_digest(predecessor: &str, path: &str) -> [u8; 32] {
    let mut hasher = Sha3_256::new();
    hasher.update(TWEAK_DERIVATION_PREFIX.as_bytes());
    hasher.update(predecessor.as_bytes());
    hasher.update(b",");
    hasher.update(path.as_bytes());
    hasher.finalize().into()
}

/// The tweak of (predecessor account, path). Fails only for an overlong path or, with
/// probability about 2^-128, a digest that is not below the group order.
pub fn derive_tweak(predecessor: &str, path: &str) -> Result<Tweak> {
    check_path(path)?;
    Tweak::from_bytes(tweak_digest(predecessor, path))
}

/// Refuses paths longer than [`MAX_PATH_LEN`] bytes.
pub fn check_path(path: &str) -> Result<()> {
    if path.len() > MAX_PATH_LEN {
        return Err(Error::PathTooLong {
            actual: path.len(),
            max: MAX_PATH_LEN,
        });
    }
    Ok(())
}

/// `root + tweak·G`. The sum is the point at infinity only if the tweak is the negated root
/// secret, which would mean the tweak hash inverted the discrete log; it is refused anyway.
pub fn derive_public_key(root: &AffinePoint, tweak: &Tweak) -> Result<AffinePoint> {
    let derived = ProjectivePoint::from(*root) + ProjectivePoint::GENERATOR * tweak.0;
    if derived == ProjectivePoint::IDENTITY {
        return Err(Error::PointAtInfinity);
    }
    Ok(derived.to_affine())
}

/// The secret key matching [`derive_public_key`]: `root_secret + tweak`. For tests and for
/// clients that stand in for the network with a local key.
pub fn derive_secret_key(root_secret: &Scalar, tweak: &Tweak) -> Scalar {
    root_secret + tweak.0
}
