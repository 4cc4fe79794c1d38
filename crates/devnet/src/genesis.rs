//! The devnet home directory: genesis on first start, key files, and the checks that refuse a
//! missing or damaged home instead of silently starting a new chain.
//!
//! Layout of `--home DIR`:
//! - `genesis.json`: chain id, genesis time, root account and its public key;
//! - `data/chain.redb`: the chain database; `data/contract.cache/`: compiled contracts;
//! - `keys/<account>.json`: near-cli key files (`account_id`, `public_key`, `secret_key`).

use std::path::{Path, PathBuf};

use near_crypto::{KeyFile, KeyType, PublicKey, SecretKey};
use near_primitives::types::AccountId;
use serde::{Deserialize, Serialize};

use crate::error::DevnetError;

pub const GENESIS_FILE: &str = "genesis.json";
pub const DATA_DIR: &str = "data";
pub const DB_FILE: &str = "chain.redb";
pub const KEYS_DIR: &str = "keys";
/// Root account balance: one billion NEAR.
pub const ROOT_BALANCE: u128 = 1_000_000_000 * 10u128.pow(24);

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Genesis {
    pub chain_id: String,
    pub protocol_version: u32,
    pub genesis_time_ns: u64,
    pub root_account_id: AccountId,
    pub root_public_key: PublicKey,
    /// Root balance in yoctoNEAR, as a decimal string.
    pub root_balance: String,
}

impl Genesis {
    pub fn root_balance(&self) -> Result<u128, DevnetError> {
        self.root_balance
            .parse()
            .map_err(|_| DevnetError::Corrupt("genesis root_balance is not a number".into()))
    }
}

/// Paths of one home directory.
#[derive(Clone, Debug)]
pub struct Home {
    pub dir: PathBuf,
}

impl Home {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Home { dir: dir.into() }
    }
    pub fn genesis_path(&self) -> PathBuf {
        self.dir.join(GENESIS_FILE)
    }
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join(DATA_DIR)
    }
    pub fn db_path(&self) -> PathBuf {
        self.data_dir().join(DB_FILE)
    }
    pub fn keys_dir(&self) -> PathBuf {
        self.dir.join(KEYS_DIR)
    }
    pub fn key_path(&self, account: &AccountId) -> PathBuf {
        self.keys_dir().join(format!("{account}.json"))
    }

    /// True when the directory does not exist or is empty: the place for a new chain.
    pub fn is_fresh(&self) -> Result<bool, DevnetError> {
        match std::fs::read_dir(&self.dir) {
            Ok(mut entries) => Ok(entries.next().is_none()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(DevnetError::Home(format!(
                "cannot read {}: {e}",
                self.dir.display()
            ))),
        }
    }

    pub fn read_genesis(&self) -> Result<Genesis, DevnetError> {
        let path = self.genesis_path();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            DevnetError::Home(format!(
                "{} is not a devnet home ({}: {e}); use an empty or new directory to start a new chain",
                self.dir.display(),
                path.display()
            ))
        })?;
        serde_json::from_str(&text)
            .map_err(|e| DevnetError::Home(format!("{} is corrupt: {e}", path.display())))
    }

    /// Writes a near-cli key file for `account`.
    pub fn write_key(
        &self,
        account: &AccountId,
        secret: &SecretKey,
    ) -> Result<PathBuf, DevnetError> {
        std::fs::create_dir_all(self.keys_dir())?;
        let path = self.key_path(account);
        let file = KeyFile {
            account_id: account.clone(),
            public_key: secret.public_key(),
            secret_key: secret.clone(),
        };
        file.write_to_file(&path)?;
        Ok(path)
    }

    /// Reads the key file of `account`.
    pub fn read_key(&self, account: &AccountId) -> Result<KeyFile, DevnetError> {
        let path = self.key_path(account);
        KeyFile::from_file(&path)
            .map_err(|e| DevnetError::Home(format!("key file {}: {e}", path.display())))
    }
}

/// Makes the genesis description and the root key for a new chain (nothing is written).
pub fn new_genesis(chain_id: &str, root: &AccountId, now_ns: u64) -> (Genesis, SecretKey) {
    let secret = SecretKey::from_random(KeyType::ED25519);
    let genesis = Genesis {
        chain_id: chain_id.to_string(),
        protocol_version: crate::runtime::PROTOCOL_VERSION,
        genesis_time_ns: now_ns,
        root_account_id: root.clone(),
        root_public_key: secret.public_key(),
        root_balance: ROOT_BALANCE.to_string(),
    };
    (genesis, secret)
}

pub fn write_genesis(home: &Home, genesis: &Genesis) -> Result<(), DevnetError> {
    std::fs::create_dir_all(&home.dir)?;
    let text = serde_json::to_string_pretty(genesis)
        .map_err(|e| DevnetError::Home(format!("genesis: {e}")))?;
    write_atomic(&home.genesis_path(), text.as_bytes())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DevnetError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trip_uses_near_cli_fields() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("h"));
        assert!(home.is_fresh().unwrap());
        let root: AccountId = "test.near".parse().unwrap();
        let (g, sk) = new_genesis("localnet", &root, 1);
        write_genesis(&home, &g).unwrap();
        let path = home.write_key(&root, &sk).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(v["account_id"], "test.near");
        assert!(v["public_key"].as_str().unwrap().starts_with("ed25519:"));
        assert!(v["secret_key"].as_str().unwrap().starts_with("ed25519:"));
        assert_eq!(home.read_genesis().unwrap(), g);
        assert_eq!(home.read_key(&root).unwrap().public_key, g.root_public_key);
        assert!(!home.is_fresh().unwrap());
    }
}
