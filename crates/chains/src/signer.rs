//! Who signs: the seam between building a transaction and the chain-signature network.
//!
//! The flows in [`crate::eth`] and [`crate::btc`] are sans-IO: they hand out the 32-byte
//! payloads to sign and take [`EcdsaSignature`]s back, so an async caller can get signatures any
//! way it likes. [`Signer`] is the small synchronous convenience on top, with two
//! implementations:
//! - [`RemoteSigner`], the network's side, complete but for its [`SignTransport`]: how a
//!   `sign` request reaches the contract and how its response comes back (a NEAR transaction
//!   and waiting for `respond`, to be provided with the node);
//! - [`LocalSigner`], which stands in for the network with a root secret key, for tests and
//!   offline use only.

use chainsig_primitives::derivation::derive_secret_key;
use chainsig_primitives::k256::elliptic_curve::PrimeField;
use chainsig_primitives::k256::{ecdsa::SigningKey, FieldBytes, ProjectivePoint, Scalar};
use chainsig_primitives::{
    derive_public_key, derive_tweak, DomainId, EcdsaPayload, EcdsaSignature, Payload, PublicKey,
    SignRequest, SignatureResponse,
};

use crate::error::{ChainsError, Result};

/// Signs payloads with the key derived for (the signer's account, `path`).
pub trait Signer {
    /// The NEAR account whose derived keys this signer uses (the `sign` predecessor).
    fn account(&self) -> &str;

    /// The derived public key of `path`: the address the transaction spends from.
    fn public_key(&self, path: &str) -> Result<PublicKey>;

    /// A signature of `payload` under the key of `path`, as the network returns it
    /// (low s, recovery id = parity of R.y). Implementations must return only signatures that
    /// verify under [`Signer::public_key`]; the flows check again anyway.
    fn sign(&self, path: &str, payload: &EcdsaPayload) -> Result<EcdsaSignature>;
}

/// **For local testing only.** Stands in for the MPC network with the root *secret* key: signs
/// with `root_secret + tweak(account, path)`, exactly the key the network would use for the
/// same root public key. A real deployment never has the root secret in one place.
#[derive(Clone)]
pub struct LocalSigner {
    root_secret: Scalar,
    root_public: PublicKey,
    account: String,
}

impl core::fmt::Debug for LocalSigner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print the secret.
        f.debug_struct("LocalSigner")
            .field("root_public", &self.root_public.to_near_string())
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl LocalSigner {
    pub fn new(root_secret: Scalar, account: impl Into<String>) -> Result<Self> {
        if bool::from(root_secret.is_zero()) {
            return Err(ChainsError::Input(
                "root secret key must not be zero".into(),
            ));
        }
        let root_public =
            PublicKey::from_affine((ProjectivePoint::GENERATOR * root_secret).to_affine())
                .map_err(|e| ChainsError::input("root secret key", e))?;
        let account = account.into();
        if account.is_empty() {
            return Err(ChainsError::Input("account must not be empty".into()));
        }
        Ok(Self {
            root_secret,
            root_public,
            account,
        })
    }

    /// Parses the root secret from 32 bytes of hex (optional `0x`).
    pub fn from_hex(root_secret_hex: &str, account: impl Into<String>) -> Result<Self> {
        let s = root_secret_hex.trim();
        let s = s.strip_prefix("0x").unwrap_or(s);
        let mut bytes = [0u8; 32];
        if s.len() != 64 {
            return Err(ChainsError::Input(format!(
                "root secret key must be 32 bytes of hex (64 digits), got {} digits",
                s.len()
            )));
        }
        hex::decode_to_slice(s, &mut bytes)
            .map_err(|e| ChainsError::input("root secret key", e))?;
        let scalar: Option<Scalar> = Scalar::from_repr(FieldBytes::from(bytes)).into();
        let scalar = scalar.ok_or_else(|| {
            ChainsError::Input("root secret key is not below the secp256k1 group order".into())
        })?;
        Self::new(scalar, account)
    }

    /// The root public key the network would hold for this secret.
    pub fn root_public_key(&self) -> PublicKey {
        self.root_public
    }

    fn derived_secret(&self, path: &str) -> Result<Scalar> {
        let tweak = derive_tweak(&self.account, path).map_err(|e| ChainsError::input("path", e))?;
        Ok(derive_secret_key(&self.root_secret, &tweak))
    }
}

impl Signer for LocalSigner {
    fn account(&self) -> &str {
        &self.account
    }

    fn public_key(&self, path: &str) -> Result<PublicKey> {
        derived_public_key(&self.root_public, &self.account, path)
    }

    fn sign(&self, path: &str, payload: &EcdsaPayload) -> Result<EcdsaSignature> {
        let secret = self.derived_secret(path)?;
        let signing_key = SigningKey::from_bytes(&secret.to_repr())
            .map_err(|e| ChainsError::failed("derived secret key", e))?;
        // RFC 6979 deterministic nonce; k256 also returns R's recovery id, but the network only
        // gives (R, s), so rebuild R the way the network's output is consumed and normalize.
        let (signature, recovery_id) = signing_key
            .sign_prehash_recoverable(payload.as_bytes())
            .map_err(|e| ChainsError::failed("local signing", e))?;
        let big_r = recover_big_r(&signature, recovery_id)?;
        let public_key = self.public_key(path)?;
        EcdsaSignature::normalize(big_r, *signature.s(), &public_key, payload)
            .map_err(|e| ChainsError::failed("local signature", e))
    }
}

/// The nonce point R of a k256 signature from r and its recovery id (x = r, y parity = id;
/// ids 2 and 3, for x ≥ n, never come from a 2^-128-likely event and are refused).
fn recover_big_r(
    signature: &chainsig_primitives::k256::ecdsa::Signature,
    recovery_id: chainsig_primitives::k256::ecdsa::RecoveryId,
) -> Result<chainsig_primitives::k256::AffinePoint> {
    use chainsig_primitives::k256::elliptic_curve::sec1::FromEncodedPoint;
    use chainsig_primitives::k256::EncodedPoint;
    if recovery_id.is_x_reduced() {
        return Err(ChainsError::Failed(
            "local signing produced an R with x ≥ n".into(),
        ));
    }
    let mut sec1 = [0u8; 33];
    sec1[0] = if recovery_id.is_y_odd() { 3 } else { 2 };
    sec1[1..].copy_from_slice(&signature.r().to_repr());
    let encoded =
        EncodedPoint::from_bytes(sec1).map_err(|e| ChainsError::failed("local signing", e))?;
    Option::from(chainsig_primitives::k256::AffinePoint::from_encoded_point(
        &encoded,
    ))
    .ok_or_else(|| ChainsError::Failed("local signing produced an invalid R".into()))
}

/// The derived public key of (account, path) under `root`.
pub fn derived_public_key(root: &PublicKey, account: &str, path: &str) -> Result<PublicKey> {
    let tweak = derive_tweak(account, path).map_err(|e| ChainsError::input("path", e))?;
    derive_public_key(root.as_affine(), &tweak)
        .and_then(PublicKey::from_affine)
        .map_err(|e| ChainsError::failed("key derivation", e))
}

/// How a [`RemoteSigner`] reaches the network: submit `{"request": request}` to the
/// contract's `sign` as the signer's account and return the response it resolves to. This is
/// the one piece the node integration has to provide (a NEAR transaction, then waiting).
pub trait SignTransport {
    fn submit(&self, request: &SignRequest) -> Result<SignatureResponse>;
}

impl<F> SignTransport for F
where
    F: Fn(&SignRequest) -> Result<SignatureResponse>,
{
    fn submit(&self, request: &SignRequest) -> Result<SignatureResponse> {
        self(request)
    }
}

/// A [`Signer`] backed by the network: derives public keys from the network's root public key
/// (the contract's `public_key` view), sends one `sign` request per payload through its
/// [`SignTransport`], and accepts only responses that verify under the derived key.
pub struct RemoteSigner<T> {
    root_public_key: PublicKey,
    account: String,
    transport: T,
}

impl<T: SignTransport> RemoteSigner<T> {
    pub fn new(root_public_key: PublicKey, account: impl Into<String>, transport: T) -> Self {
        Self {
            root_public_key,
            account: account.into(),
            transport,
        }
    }

    pub fn root_public_key(&self) -> PublicKey {
        self.root_public_key
    }
}

impl<T: SignTransport> Signer for RemoteSigner<T> {
    fn account(&self) -> &str {
        &self.account
    }

    fn public_key(&self, path: &str) -> Result<PublicKey> {
        derived_public_key(&self.root_public_key, &self.account, path)
    }

    fn sign(&self, path: &str, payload: &EcdsaPayload) -> Result<EcdsaSignature> {
        let public_key = self.public_key(path)?;
        let request = SignRequest {
            path: path.to_string(),
            payload: Payload::Ecdsa(*payload),
            domain_id: DomainId(0),
        };
        let SignatureResponse::Secp256k1(signature) = self.transport.submit(&request)?;
        signature.verify(&public_key, payload).map_err(|e| {
            ChainsError::Failed(format!(
                "the network's signature for path `{path}` does not verify under the derived key: {e}"
            ))
        })?;
        Ok(signature)
    }
}
