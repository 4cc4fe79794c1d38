//! `respond`'s `response` argument: the compat response JSON
//! `{"scheme":"Secp256k1","big_r":{"affine_point":"<33-byte hex>"},"s":{"scalar":"<32-byte hex>"},
//! "recovery_id":0|1}`.
//!
//! It parses into the primitives' [`SignatureResponse`] with the same checks, but through plain
//! structs instead of serde's internally tagged enum support, whose buffering code costs the
//! contract wasm about 12 KB.

use chainsig_primitives::k256::elliptic_curve::PrimeField;
use chainsig_primitives::k256::{FieldBytes, Scalar};
use chainsig_primitives::{EcdsaSignature, PublicKey, SignatureResponse};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
enum Scheme {
    Secp256k1,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PointJson {
    affine_point: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScalarJson {
    scalar: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResponseJson {
    #[allow(dead_code)]
    scheme: Scheme,
    big_r: PointJson,
    s: ScalarJson,
    recovery_id: u8,
}

/// A response as `respond` receives it; serializes exactly like [`SignatureResponse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ResponseJson")]
pub struct ResponseArg(pub EcdsaSignature);

fn decode_hex<const N: usize>(what: &str, s: &str) -> Result<[u8; N], String> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    let mut out = [0u8; N];
    if s.len() != 2 * N {
        return Err(format!(
            "{what} must be {N} bytes of hex, got {} characters",
            s.len()
        ));
    }
    hex::decode_to_slice(s, &mut out).map_err(|e| format!("{what}: invalid hex: {e}"))?;
    Ok(out)
}

impl TryFrom<ResponseJson> for ResponseArg {
    type Error = String;

    fn try_from(json: ResponseJson) -> Result<Self, String> {
        let big_r = decode_hex::<33>("big_r.affine_point", &json.big_r.affine_point)?;
        let big_r = PublicKey::from_sec1(&big_r).map_err(|e| format!("big_r: {e}"))?;
        let s = decode_hex::<32>("s.scalar", &json.s.scalar)?;
        let s = Option::<Scalar>::from(Scalar::from_repr(FieldBytes::from(s)))
            .ok_or("s: scalar is not below the secp256k1 group order")?;
        EcdsaSignature::from_parts(*big_r.as_affine(), s, json.recovery_id)
            .map(Self)
            .map_err(|e| e.to_string())
    }
}

impl From<ResponseArg> for SignatureResponse {
    fn from(arg: ResponseArg) -> Self {
        SignatureResponse::Secp256k1(arg.0)
    }
}

impl From<SignatureResponse> for ResponseArg {
    fn from(response: SignatureResponse) -> Self {
        let SignatureResponse::Secp256k1(signature) = response;
        Self(signature)
    }
}

impl Serialize for ResponseArg {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SignatureResponse::Secp256k1(self.0).serialize(serializer)
    }
}
