//! One node's files: TLS key, storage key, config. Written once, when the network is made;
//! a restart reuses them, since the contract has the TLS key and mesh address registered.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use chainsig_node::config::{Config, StockpileSection};
use serde::Serialize;

use super::files::{Home, NodeSetup};
use crate::error::CliError;

/// Small low watermarks make `ready` come after a few generations; higher high watermarks
/// keep a buffer for bursts of requests; four concurrent generations of eight triples keep
/// both cores busy under load (BENCHMARKS.md).
pub fn local_stockpile() -> StockpileSection {
    StockpileSection {
        triples_low: 4,
        triples_high: 32,
        presignatures_low: 2,
        presignatures_high: 16,
        max_concurrent_generations: 4,
        triple_batch: 8,
    }
}

/// A free port on the loopback interface (the OS picks it; we release it for the node).
pub fn free_port() -> Result<u16, CliError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| CliError::Failed(format!("cannot find a free local port: {e}")))
}

/// The parts of the node's TOML config that `local up` fills in.
#[derive(Serialize)]
struct ConfigFile {
    node: NodeToml,
    near: NearToml,
    mesh: MeshToml,
    http: HttpToml,
    storage: StorageToml,
    stockpile: StockpileToml,
}

#[derive(Serialize)]
struct NodeToml {
    account_id: String,
    account_key_file: PathBuf,
    data_dir: PathBuf,
}

#[derive(Serialize)]
struct NearToml {
    rpc_url: String,
    contract_id: String,
    /// Written out so that the choice shows in every node's config.
    finality: chainsig_node::chain::Finality,
}

#[derive(Serialize)]
struct MeshToml {
    listen: String,
    public_address: String,
    tls_key_file: PathBuf,
}

#[derive(Serialize)]
struct HttpToml {
    listen: String,
}

#[derive(Serialize)]
struct StorageToml {
    key_file: PathBuf,
}

#[derive(Serialize)]
struct StockpileToml {
    triples_low: usize,
    triples_high: usize,
    presignatures_low: usize,
    presignatures_high: usize,
    max_concurrent_generations: usize,
    triple_batch: usize,
}

impl From<StockpileSection> for StockpileToml {
    fn from(s: StockpileSection) -> Self {
        StockpileToml {
            triples_low: s.triples_low,
            triples_high: s.triples_high,
            presignatures_low: s.presignatures_low,
            presignatures_high: s.presignatures_high,
            max_concurrent_generations: s.max_concurrent_generations,
            triple_batch: s.triple_batch,
        }
    }
}

/// What a new node needs to be registered as a candidate.
pub struct NewNode {
    pub setup: NodeSetup,
    /// `ed25519:<base58>` of the mesh TLS key.
    pub tls_public_key: String,
}

fn failed(path: &Path, e: impl std::fmt::Display) -> CliError {
    CliError::Failed(format!("{}: {e}", path.display()))
}

/// Writes a new node's directory: keys and config. The account key file exists already.
pub fn create(
    home: &Home,
    name: &str,
    account_id: &str,
    rpc_url: &str,
    contract_id: &str,
) -> Result<NewNode, CliError> {
    let dir = absolute(&home.node_dir(name))?;
    std::fs::create_dir_all(dir.join("data")).map_err(|e| failed(&dir, e))?;
    let tls_key_file = dir.join("tls.key");
    let tls = chainsig_node::keys::create_tls_key_file(&tls_key_file)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let storage_key_file = dir.join("storage.key");
    write_secret_hex(&storage_key_file)?;
    let (mesh_port, http_port) = (free_port()?, free_port()?);
    let mesh_address = format!("127.0.0.1:{mesh_port}");
    let http_listen = format!("127.0.0.1:{http_port}");
    let config = ConfigFile {
        node: NodeToml {
            account_id: account_id.to_owned(),
            account_key_file: absolute(&home.key_file(account_id))?,
            data_dir: dir.join("data"),
        },
        near: NearToml {
            rpc_url: rpc_url.to_owned(),
            contract_id: contract_id.to_owned(),
            finality: chainsig_node::chain::Finality::default(),
        },
        mesh: MeshToml {
            listen: mesh_address.clone(),
            public_address: mesh_address.clone(),
            tls_key_file,
        },
        http: HttpToml {
            listen: http_listen.clone(),
        },
        storage: StorageToml {
            key_file: storage_key_file,
        },
        stockpile: local_stockpile().into(),
    };
    let config_file = dir.join("config.toml");
    write_config(&config_file, &config)?;
    Ok(NewNode {
        setup: NodeSetup {
            name: name.to_owned(),
            account_id: account_id.to_owned(),
            config_file,
            mesh_address,
            http_url: format!("http://{http_listen}"),
            removed: false,
        },
        tls_public_key: tls.public_key().to_string(),
    })
}

/// Writes the config and reads it back with the node's own parser, so a field the node
/// would refuse fails here, at setup, and not later in a node's log.
fn write_config(path: &Path, config: &ConfigFile) -> Result<(), CliError> {
    let text = toml::to_string(config).map_err(|e| failed(path, e))?;
    let header = "# Written by `chainsig local up`.\n";
    std::fs::write(path, format!("{header}{text}")).map_err(|e| failed(path, e))?;
    Config::load(path)
        .map(|_| ())
        .map_err(|e| CliError::Failed(e.to_string()))
}

/// A fresh 32-byte key as 64 hex characters, readable by its owner only.
fn write_secret_hex(path: &Path) -> Result<(), CliError> {
    let mut key = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut key);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = options
        .open(path)
        .and_then(|mut file| file.write_all(hex::encode(key).as_bytes()));
    key.fill(0);
    result.map_err(|e| failed(path, e))
}

pub fn absolute(path: &Path) -> Result<PathBuf, CliError> {
    std::path::absolute(path).map_err(|e| failed(path, e))
}
