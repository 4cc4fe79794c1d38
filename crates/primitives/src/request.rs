//! The arguments of `sign` **(compat)** and the request identity `respond` refers to.
//!
//! Clients send either form inside `{"request": …}`:
//! - current: `{"path":"…","payload_v2":{"Ecdsa":"<32-byte hex>"},"domain_id":0}`
//! - legacy:  `{"payload":[32 numbers],"path":"…","key_version":0}`
//!
//! Both parse into one [`SignRequest`], which always serializes in the current form.

use k256::elliptic_curve::PrimeField;
use k256::{FieldBytes, Scalar};
use serde::{Deserialize, Serialize};

use crate::derivation::{check_path, derive_tweak, Tweak};
use crate::error::{decode_hex_array, Error, Result};

/// A 32-byte message hash to be signed with ECDSA; always a valid scalar (< n), because
/// the signing protocol works on the hash as a scalar and must not reduce it silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EcdsaPayload([u8; 32]);

impl EcdsaPayload {
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self> {
        let in_range: bool = Scalar::from_repr(FieldBytes::from(bytes)).is_some().into();
        if !in_range {
            return Err(Error::PayloadOutOfRange);
        }
        Ok(Self(bytes))
    }

    pub fn from_hex(s: &str) -> Result<Self> {
        Self::from_bytes(decode_hex_array::<32>(s)?)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The payload as the scalar `z` of ECDSA.
    pub fn to_scalar(&self) -> Scalar {
        // Checked in the constructor, so this never falls back.
        Option::from(Scalar::from_repr(FieldBytes::from(self.0))).unwrap_or(Scalar::ZERO)
    }
}

impl Serialize for EcdsaPayload {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> core::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for EcdsaPayload {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> core::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// What is to be signed, tagged by scheme: `{"Ecdsa":"<hex>"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Payload {
    Ecdsa(EcdsaPayload),
}

impl Payload {
    pub fn as_bytes(&self) -> &[u8; 32] {
        match self {
            Payload::Ecdsa(p) => p.as_bytes(),
        }
    }
}

/// Which of the network's keys signs. Only domain 0, secp256k1, exists today.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct DomainId(pub u64);

/// A `sign` request, normalized from either argument form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct SignRequest {
    pub path: String,
    #[serde(rename = "payload_v2")]
    pub payload: Payload,
    pub domain_id: DomainId,
}

impl SignRequest {
    /// The identity of this request once the caller is known: what the nodes sign and what
    /// `respond` names.
    pub fn signature_request(&self, predecessor: &str) -> Result<SignatureRequest> {
        Ok(SignatureRequest {
            tweak: derive_tweak(predecessor, &self.path)?,
            payload: self.payload,
            domain_id: self.domain_id,
        })
    }
}

/// Every field either argument form may carry; [`SignRequest`]'s `Deserialize` checks that
/// they make exactly one of the two forms.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignRequestFields {
    path: String,
    payload_v2: Option<Payload>,
    #[serde(rename = "payload")]
    legacy_payload: Option<Vec<u8>>,
    domain_id: Option<DomainId>,
    #[serde(rename = "key_version")]
    legacy_key_version: Option<u32>,
}

impl TryFrom<SignRequestFields> for SignRequest {
    type Error = Error;

    fn try_from(fields: SignRequestFields) -> Result<Self> {
        check_path(&fields.path)?;
        let payload = match (fields.payload_v2, fields.legacy_payload) {
            (Some(payload), None) => payload,
            (None, Some(bytes)) => Payload::Ecdsa(EcdsaPayload::from_bytes(
                bytes.as_slice().try_into().map_err(|_| Error::Length {
                    expected: 32,
                    actual: bytes.len(),
                })?,
            )?),
            (Some(_), Some(_)) => {
                return Err(Error::Request(
                    "give either `payload_v2` or the legacy `payload`, not both".into(),
                ))
            }
            (None, None) => {
                return Err(Error::Request(
                    "missing payload: give `payload_v2` (or the legacy `payload`)".into(),
                ))
            }
        };
        let domain_id = match (fields.domain_id, fields.legacy_key_version) {
            (Some(_), Some(_)) => {
                return Err(Error::Request(
                    "give either `domain_id` or the legacy `key_version`, not both".into(),
                ))
            }
            (Some(domain), None) => domain,
            (None, Some(version)) => DomainId(version.into()),
            (None, None) => DomainId(0),
        };
        if domain_id != DomainId(0) {
            return Err(Error::Request(format!(
                "unknown domain {}: only domain 0 (secp256k1) exists",
                domain_id.0
            )));
        }
        Ok(Self {
            path: fields.path,
            payload,
            domain_id,
        })
    }
}

impl<'de> Deserialize<'de> for SignRequest {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> core::result::Result<Self, D::Error> {
        SignRequestFields::deserialize(deserializer)?
            .try_into()
            .map_err(serde::de::Error::custom)
    }
}

/// The identity of a pending request as the contract keys it and `respond` names it:
/// the caller's tweak (which stands for account and path), the payload and the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureRequest {
    pub tweak: Tweak,
    pub payload: Payload,
    pub domain_id: DomainId,
}
