//! The local network's home directory: where everything lives, the record of the network's
//! setup (`local.json`, what a restart resumes) and the file clients read (`network.json`).
//!
//! Layout of `--home DIR`:
//! - `devnet/`: the chain (genesis, database, the root account's key file);
//! - `keys/<account>.json`: near-cli key files of the accounts `local up` created;
//! - `nodes/<name>/`: `config.toml`, `tls.key`, `storage.key` (0600), `data/`, `node.log`, `pid`;
//! - `local.json`: the setup, written once the contract is initialized;
//! - `network.json`: what `sign`, `derive` and `bench` read, written when the network is ready.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::CliError;

pub const SETUP_FILE: &str = "local.json";
pub const NETWORK_FILE: &str = "network.json";

/// Paths of one local network home.
#[derive(Clone, Debug)]
pub struct Home {
    pub dir: PathBuf,
}

impl Home {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Home { dir: dir.into() }
    }
    pub fn devnet_dir(&self) -> PathBuf {
        self.dir.join("devnet")
    }
    pub fn keys_dir(&self) -> PathBuf {
        self.dir.join("keys")
    }
    pub fn key_file(&self, account: &str) -> PathBuf {
        self.keys_dir().join(format!("{account}.json"))
    }
    pub fn node_dir(&self, name: &str) -> PathBuf {
        self.dir.join("nodes").join(name)
    }
    pub fn setup_file(&self) -> PathBuf {
        self.dir.join(SETUP_FILE)
    }
    pub fn network_file(&self) -> PathBuf {
        self.dir.join(NETWORK_FILE)
    }
}

/// One node as set up: names and addresses that must stay the same across restarts (the
/// contract lists the mesh address, the config files name the rest).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeSetup {
    pub name: String,
    pub account_id: String,
    pub config_file: PathBuf,
    pub mesh_address: String,
    pub http_url: String,
    /// Voted out with `local remove-node`: `local up` no longer runs it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
}

/// `local.json`: what `local up` created, so that a restart resumes the same network.
/// `local add-node` and `local remove-node` change its node list while `local up` runs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Setup {
    pub nodes: Vec<NodeSetup>,
    pub threshold: u32,
    pub rpc_port: u16,
    pub contract_id: String,
    pub users: Vec<String>,
    /// The stockpile's low presignature watermark written in the node configs: `ready` waits
    /// until every node owns at least this many.
    pub presignatures_low: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NetworkNode {
    pub account_id: String,
    pub http_url: String,
    pub participant_id: Option<u32>,
    pub config_file: PathBuf,
    pub pid_file: PathBuf,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserKey {
    pub account_id: String,
    pub key_file: PathBuf,
}

/// `network.json`: everything a client needs to use the running network.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Network {
    pub rpc_url: String,
    pub contract_id: String,
    pub user_account: String,
    pub user_key_file: PathBuf,
    pub root_public_key: String,
    pub threshold: u32,
    pub nodes: Vec<NetworkNode>,
    /// Every user account `local up` created, the first being `user_account`.
    pub users: Vec<UserKey>,
}

impl Setup {
    /// The nodes `local up` runs: every one not voted out.
    pub fn active_nodes(&self) -> impl Iterator<Item = &NodeSetup> {
        self.nodes.iter().filter(|n| !n.removed)
    }

    /// The account the devnet's genesis created, parent of every account here.
    pub fn root_account(&self) -> Option<&str> {
        self.contract_id.split_once('.').map(|(_, root)| root)
    }
}

impl Network {
    /// Reads `DIR/network.json`; a missing file means the network was never made ready.
    pub fn load(home: &Path) -> Result<Network, CliError> {
        let path = Home::new(home).network_file();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            CliError::Input(format!(
                "cannot read {} ({e}): is `chainsig local up --home {}` running?",
                path.display(),
                home.display()
            ))
        })?;
        serde_json::from_str(&text)
            .map_err(|e| CliError::Failed(format!("{} is damaged: {e}", path.display())))
    }

    /// The key file of `account`: one `local up` made, or any near-cli key file in the home.
    pub fn key_file_of(&self, home: &Path, account: &str) -> PathBuf {
        self.users
            .iter()
            .find(|u| u.account_id == account)
            .map(|u| u.key_file.clone())
            .unwrap_or_else(|| Home::new(home).key_file(account))
    }
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| CliError::Failed(format!("{} is damaged: {e}", path.display())))
}

/// Writes through a temporary file and a rename, so a reader never sees half a file.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Failed(format!("{}: {e}", path.display())))?;
    write_atomic(path, text.as_bytes())
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, bytes)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|e| CliError::Failed(format!("cannot write {}: {e}", path.display())))
}
