//! The node's configuration file (TOML). Every field is checked when the file is read, and a
//! bad one is reported by name. Secrets are not in it: the storage key comes from an
//! environment variable or a file, the account and TLS keys from their own files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("config file {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("config field `{field}`: {reason}")]
    Field { field: &'static str, reason: String },
}

fn field(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field,
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub node: NodeSection,
    pub near: NearSection,
    pub mesh: MeshSection,
    pub http: HttpSection,
    pub storage: StorageSection,
    #[serde(default)]
    pub stockpile: StockpileSection,
    #[serde(default)]
    pub timeouts: TimeoutSection,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// The node's NEAR account, which sends `join`, `vote_*` and `respond`.
    pub account_id: String,
    /// near-cli key file of that account: `{"account_id","public_key","secret_key"}`.
    pub account_key_file: PathBuf,
    /// Where the node keeps its database.
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NearSection {
    /// NEAR JSON-RPC endpoint: the devnet, testnet or mainnet.
    pub rpc_url: String,
    /// The signer contract's account.
    pub contract_id: String,
    /// Which blocks the indexer follows and the node's views read: `near-final` (default),
    /// `final` or `optimistic` (see the README, "Which blocks the indexer follows").
    #[serde(default)]
    pub finality: crate::chain::Finality,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeshSection {
    /// Where this node accepts peer connections.
    pub listen: SocketAddr,
    /// The address peers dial, as registered in the contract (`host:port`).
    pub public_address: String,
    /// File holding the TLS key's 32-byte ed25519 seed, hex.
    pub tls_key_file: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// `/health`, `/metrics`, `/state`.
    pub listen: SocketAddr,
}

/// Where the storage encryption key comes from: exactly one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// Name of an environment variable holding the key (64 hex characters).
    pub key_env: Option<String>,
    /// A file holding the key (64 hex characters).
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StockpileSection {
    pub triples_low: usize,
    pub triples_high: usize,
    pub presignatures_low: usize,
    pub presignatures_high: usize,
    /// How many triple batches this node may be generating at once.
    pub max_concurrent_generations: usize,
    pub triple_batch: usize,
}

impl Default for StockpileSection {
    fn default() -> Self {
        Self {
            triples_low: 16,
            triples_high: 64,
            presignatures_low: 8,
            presignatures_high: 32,
            max_concurrent_generations: 4,
            triple_batch: 8,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutSection {
    pub keygen_ms: u64,
    pub triple_ms: u64,
    pub presign_ms: u64,
    pub sign_ms: u64,
}

impl Default for TimeoutSection {
    fn default() -> Self {
        Self {
            keygen_ms: 60_000,
            triple_ms: 120_000,
            presign_ms: 30_000,
            sign_ms: 10_000,
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks a config; `path` is only for messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            reason: e.message().to_string() + &span_text(text, e.span()),
        })?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        check_account("node.account_id", &self.node.account_id)?;
        check_account("near.contract_id", &self.near.contract_id)?;
        let rpc = url::Url::parse(&self.near.rpc_url)
            .map_err(|e| field("near.rpc_url", format!("not a URL: {e}")))?;
        if !matches!(rpc.scheme(), "http" | "https") {
            return Err(field("near.rpc_url", "must be an http:// or https:// URL"));
        }
        if self
            .mesh
            .public_address
            .rsplit_once(':')
            .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
        {
            return Err(field("mesh.public_address", "must be `host:port`"));
        }
        match (&self.storage.key_env, &self.storage.key_file) {
            (Some(_), Some(_)) => {
                return Err(field("storage", "give `key_env` or `key_file`, not both"))
            }
            (None, None) => {
                return Err(field(
                    "storage",
                    "give `key_env` or `key_file` for the storage key",
                ))
            }
            _ => {}
        }
        self.stockpile.check()?;
        self.timeouts.check()
    }
}

impl StockpileSection {
    fn check(&self) -> Result<(), ConfigError> {
        if self.triples_low > self.triples_high {
            return Err(field(
                "stockpile.triples_low",
                "must not exceed `triples_high`",
            ));
        }
        if self.presignatures_low > self.presignatures_high {
            return Err(field(
                "stockpile.presignatures_low",
                "must not exceed `presignatures_high`",
            ));
        }
        if self.max_concurrent_generations == 0 {
            return Err(field(
                "stockpile.max_concurrent_generations",
                "must be at least 1",
            ));
        }
        if !(1..=256).contains(&self.triple_batch) {
            return Err(field("stockpile.triple_batch", "must be between 1 and 256"));
        }
        Ok(())
    }
}

impl TimeoutSection {
    fn check(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("timeouts.keygen_ms", self.keygen_ms),
            ("timeouts.triple_ms", self.triple_ms),
            ("timeouts.presign_ms", self.presign_ms),
            ("timeouts.sign_ms", self.sign_ms),
        ] {
            if !(100..=3_600_000).contains(&value) {
                return Err(field(name, "must be between 100 and 3600000 milliseconds"));
            }
        }
        Ok(())
    }
}

/// NEAR account id rules: 2 to 64 characters of `a-z`, `0-9` and `-_.` separators.
fn check_account(name: &'static str, account: &str) -> Result<(), ConfigError> {
    account
        .parse::<near_account_id::AccountId>()
        .map(|_| ())
        .map_err(|e| field(name, e.to_string()))
}

/// Where a parse error is: " at `section.key` (line L)" when the span is on a `key = value`
/// line, " (line L)" otherwise.
fn span_text(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(span) = span else {
        return String::new();
    };
    let start = span.start.min(text.len());
    let line_number = text[..start].matches('\n').count() + 1;
    let line = text.lines().nth(line_number - 1).unwrap_or_default();
    let key = line.split_once('=').map(|(key, _)| key.trim());
    let section = text[..start].lines().rev().find_map(|l| {
        l.trim()
            .strip_prefix('[')?
            .strip_suffix(']')
            .map(str::to_owned)
    });
    match (section, key) {
        (Some(section), Some(key)) if !key.is_empty() => {
            format!(" at `{section}.{key}` (line {line_number})")
        }
        _ => format!(" (line {line_number})"),
    }
}
