//! AES-256-GCM for secrets at rest. Each record gets a fresh random nonce, and the record's
//! place (table and key) is authenticated with it, so a ciphertext moved to another slot, or
//! one from another data directory, fails to decrypt instead of being read as something else.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use super::StorageError;

const NONCE_LEN: usize = 12;

/// A sealed record that does not open: another key, another place, or changed bytes.
#[derive(Debug)]
pub(crate) struct Undecryptable;

/// The storage encryption key. Never printed, never written by the node.
pub struct StorageKey(Zeroizing<[u8; 32]>);

impl StorageKey {
    /// Parses 64 hex characters (surrounding white space ignored, as in a key file).
    pub fn from_hex(text: &str) -> Result<Self, StorageError> {
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), key.as_mut()).map_err(|_| {
            StorageError::BadKey("the storage key must be 64 hex characters (32 bytes)".into())
        })?;
        Ok(Self(key))
    }

    /// A fresh random key, for tests and for `local up` to hand to the nodes it starts.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(key.as_mut());
        Self(key)
    }

    /// The key as hex, for writing it to a key file the operator owns.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.as_ref()))
    }
}

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StorageKey(<redacted>)")
    }
}

pub(crate) struct Cipher(Aes256Gcm);

impl Cipher {
    pub(crate) fn new(key: &StorageKey) -> Self {
        Self(Aes256Gcm::new(key.0.as_ref().into()))
    }

    /// `nonce ‖ ciphertext ‖ tag`.
    pub(crate) fn seal(&self, place: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .0
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: place,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub(crate) fn open(
        &self,
        place: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Undecryptable> {
        let Some((nonce, ciphertext)) = sealed.split_first_chunk::<NONCE_LEN>() else {
            return Err(Undecryptable);
        };
        self.0
            .decrypt(
                &Nonce::from(*nonce),
                Payload {
                    msg: ciphertext,
                    aad: place,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| Undecryptable)
    }
}
