//! A node's TLS identity: an ed25519 key whose public half the node registers in the contract
//! (`join(url, tls_public_key, …)`), and a self-signed certificate carrying it. Peers trust the
//! key, not the certificate: there is no CA, each side pins the key the contract lists.

use std::fmt;
use std::str::FromStr;

use rcgen::{CertificateParams, KeyPair, PKCS_ED25519};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroizing;

use super::MeshError;

/// PKCS#8 v1 wrapping of a raw ed25519 seed (RFC 8410): this fixed prefix, then the 32 bytes.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// An ed25519 public key as NEAR writes it: `ed25519:<base58 of 32 bytes>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TlsPublicKey(pub [u8; 32]);

impl fmt::Display for TlsPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ed25519:{}", bs58::encode(self.0).into_string())
    }
}

impl fmt::Debug for TlsPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for TlsPublicKey {
    type Err = MeshError;
    fn from_str(text: &str) -> Result<Self, MeshError> {
        let bad = || MeshError::BadKey(format!("`{text}` is not an `ed25519:<base58>` public key"));
        let encoded = text.strip_prefix("ed25519:").ok_or_else(bad)?;
        let bytes = bs58::decode(encoded).into_vec().map_err(|_| bad())?;
        Ok(Self(bytes.try_into().map_err(|_| bad())?))
    }
}

/// The node's TLS key pair and certificate. The secret is zeroized on drop and never printed.
pub struct TlsIdentity {
    public_key: TlsPublicKey,
    pkcs8: Zeroizing<Vec<u8>>,
    certificate: CertificateDer<'static>,
}

impl TlsIdentity {
    /// From the 32-byte ed25519 seed.
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self, MeshError> {
        let mut pkcs8 = Zeroizing::new(PKCS8_ED25519_PREFIX.to_vec());
        pkcs8.extend_from_slice(seed);
        let der = PrivatePkcs8KeyDer::from(pkcs8.as_slice());
        let key_pair = KeyPair::from_pkcs8_der_and_sign_algo(&der, &PKCS_ED25519)
            .map_err(|e| MeshError::BadKey(format!("TLS key: {e}")))?;
        let public_key = TlsPublicKey(
            key_pair
                .public_key_raw()
                .try_into()
                .map_err(|_| MeshError::BadKey("TLS key is not ed25519".into()))?,
        );
        let params = CertificateParams::new(vec![super::SERVER_NAME.to_string()])
            .map_err(|e| MeshError::BadKey(format!("TLS certificate: {e}")))?;
        let certificate = params
            .self_signed(&key_pair)
            .map_err(|e| MeshError::BadKey(format!("TLS certificate: {e}")))?;
        Ok(Self {
            public_key,
            pkcs8,
            certificate: certificate.der().clone(),
        })
    }

    /// A fresh random identity.
    pub fn generate() -> Result<Self, MeshError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, seed.as_mut());
        Self::from_seed(&seed)
    }

    pub fn public_key(&self) -> TlsPublicKey {
        self.public_key
    }

    pub(crate) fn certificate_chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.certificate.clone()]
    }

    pub(crate) fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.pkcs8.to_vec()))
    }
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}
