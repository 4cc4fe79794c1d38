use thiserror::Error;

/// Everything that can be wrong with data that comes from outside: a client, a peer, the chain.
/// Each variant says what was expected, so the message can be shown to a user as it is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    #[error("invalid hex: {0}")]
    Hex(String),
    #[error("invalid base58: {0}")]
    Base58(String),
    #[error("expected {expected} bytes, got {actual}")]
    Length { expected: usize, actual: usize },
    #[error("not a valid point on secp256k1")]
    PointNotOnCurve,
    #[error("the point at infinity is not allowed here")]
    PointAtInfinity,
    #[error("scalar is not below the secp256k1 group order")]
    ScalarOutOfRange,
    #[error("scalar must not be zero")]
    ZeroScalar,
    #[error("payload must be below the secp256k1 group order")]
    PayloadOutOfRange,
    #[error("unsupported key type `{0}`: only secp256k1 is supported")]
    UnsupportedKeyType(String),
    #[error("public key must look like `secp256k1:<base58>` or be SEC1 hex")]
    PublicKeyFormat,
    #[error("derivation path is {actual} bytes long; at most {max} are allowed")]
    PathTooLong { actual: usize, max: usize },
    #[error("invalid sign request: {0}")]
    Request(String),
    #[error("signature does not verify under the expected public key")]
    BadSignature,
    #[error("signature s is not normalized to the lower half of the group order")]
    HighS,
    #[error("recovery id must be 0 or 1, got {0}")]
    RecoveryId(u8),
}

pub type Result<T> = core::result::Result<T, Error>;

/// Decodes hex (either case, optional `0x`) into exactly `N` bytes.
pub(crate) fn decode_hex_array<const N: usize>(s: &str) -> Result<[u8; N]> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.len() != 2 * N {
        return Err(Error::Length {
            expected: N,
            actual: s.len() / 2,
        });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|e| Error::Hex(e.to_string()))?;
    Ok(out)
}
