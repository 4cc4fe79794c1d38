//! The node's two key files: its NEAR account key (near-cli format, the same files the
//! devnet writes) and its TLS key (an ed25519 seed, hex). Errors name the file and what is
//! wrong, never the key.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use near_crypto::{KeyFile, SecretKey};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::mesh::TlsIdentity;

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("key file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

fn file_error(path: &Path, reason: impl Into<String>) -> KeyError {
    KeyError::File {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// The account that signs the node's transactions, with its secret key.
pub struct AccountKey {
    pub account_id: near_account_id::AccountId,
    pub secret_key: SecretKey,
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountKey")
            .field("account_id", &self.account_id)
            .field("public_key", &self.secret_key.public_key())
            .finish_non_exhaustive()
    }
}

/// Reads a near-cli key file `{"account_id","public_key","secret_key"}` and checks that it is
/// `expected_account`'s and that its public key belongs to its secret key.
pub fn load_account_key(path: &Path, expected_account: &str) -> Result<AccountKey, KeyError> {
    let file = KeyFile::from_file(path).map_err(|e| file_error(path, e.to_string()))?;
    if file.account_id.as_str() != expected_account {
        return Err(file_error(
            path,
            format!(
                "it is the key of `{}`, not of `{expected_account}`",
                file.account_id
            ),
        ));
    }
    if file.secret_key.public_key() != file.public_key {
        return Err(file_error(
            path,
            "`public_key` does not belong to `secret_key`",
        ));
    }
    Ok(AccountKey {
        account_id: file.account_id,
        secret_key: file.secret_key,
    })
}

/// Reads the TLS key: 64 hex characters (white space around them ignored).
pub fn load_tls_identity(path: &Path) -> Result<TlsIdentity, KeyError> {
    let text =
        Zeroizing::new(std::fs::read_to_string(path).map_err(|e| file_error(path, e.to_string()))?);
    let mut seed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), seed.as_mut()).map_err(|_| {
        file_error(
            path,
            "a TLS key file holds 64 hex characters (a 32-byte seed)",
        )
    })?;
    TlsIdentity::from_seed(&seed).map_err(|e| file_error(path, e.to_string()))
}

/// Makes a new TLS key and writes it to `path`, readable by its owner only. An existing file is
/// never overwritten: that would change the key the contract has registered.
pub fn create_tls_key_file(path: &Path) -> Result<TlsIdentity, KeyError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, seed.as_mut());
    let identity = TlsIdentity::from_seed(&seed).map_err(|e| file_error(path, e.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| file_error(path, format!("cannot create it: {e}")))?;
    let text = Zeroizing::new(hex::encode(seed.as_ref()));
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| file_error(path, e.to_string()))?;
    Ok(identity)
}
