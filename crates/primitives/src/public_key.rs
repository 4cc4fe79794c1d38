//! Public keys in the two forms users meet: NEAR's `secp256k1:<base58 of x‖y>` **(compat)**
//! and SEC1 hex (compressed or uncompressed).

use core::fmt;
use core::str::FromStr;

use k256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use k256::{AffinePoint, EncodedPoint};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const SECP256K1_PREFIX: &str = "secp256k1:";

/// A secp256k1 public key that is known to be a valid point other than infinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(AffinePoint);

impl PublicKey {
    pub fn from_affine(point: AffinePoint) -> Result<Self> {
        if point == AffinePoint::IDENTITY {
            return Err(Error::PointAtInfinity);
        }
        Ok(Self(point))
    }

    /// Parses SEC1 bytes: 33 (compressed) or 65 (uncompressed).
    pub fn from_sec1(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != 33 && bytes.len() != 65 {
            return Err(Error::Length {
                expected: 33,
                actual: bytes.len(),
            });
        }
        let encoded = EncodedPoint::from_bytes(bytes).map_err(|_| Error::PointNotOnCurve)?;
        let point: Option<AffinePoint> = AffinePoint::from_encoded_point(&encoded).into();
        Self::from_affine(point.ok_or(Error::PointNotOnCurve)?)
    }

    /// Parses the 64 bytes x‖y of NEAR's secp256k1 key format.
    pub fn from_xy(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != 64 {
            return Err(Error::Length {
                expected: 64,
                actual: bytes.len(),
            });
        }
        let mut sec1 = [0u8; 65];
        sec1[0] = 0x04;
        sec1[1..].copy_from_slice(bytes);
        Self::from_sec1(&sec1)
    }

    /// Parses `secp256k1:<base58>` or SEC1 hex (with or without `0x`).
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if let Some(b58) = s.strip_prefix(SECP256K1_PREFIX) {
            let bytes = bs58::decode(b58)
                .into_vec()
                .map_err(|e| Error::Base58(e.to_string()))?;
            return Self::from_xy(&bytes);
        }
        if let Some((kind, _)) = s.split_once(':') {
            return Err(Error::UnsupportedKeyType(kind.to_string()));
        }
        let hex_str = s.strip_prefix("0x").unwrap_or(s);
        if hex_str.is_empty() || !hex_str.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::PublicKeyFormat);
        }
        let bytes = hex::decode(hex_str).map_err(|e| Error::Hex(e.to_string()))?;
        Self::from_sec1(&bytes)
    }

    pub fn as_affine(&self) -> &AffinePoint {
        &self.0
    }

    pub fn to_sec1_compressed(&self) -> [u8; 33] {
        let mut out = [0u8; 33];
        out.copy_from_slice(self.0.to_encoded_point(true).as_bytes());
        out
    }

    pub fn to_sec1_uncompressed(&self) -> [u8; 65] {
        let mut out = [0u8; 65];
        out.copy_from_slice(self.0.to_encoded_point(false).as_bytes());
        out
    }

    /// The `secp256k1:<base58 of x‖y>` string NEAR uses.
    pub fn to_near_string(&self) -> String {
        let uncompressed = self.to_sec1_uncompressed();
        format!(
            "{SECP256K1_PREFIX}{}",
            bs58::encode(&uncompressed[1..]).into_string()
        )
    }
}

impl From<PublicKey> for AffinePoint {
    fn from(pk: PublicKey) -> Self {
        pk.0
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_near_string())
    }
}

impl FromStr for PublicKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> core::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_near_string())
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> core::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}
