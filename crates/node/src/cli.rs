//! `chainsig node --config FILE`: the node daemon's command line.

use std::path::PathBuf;

/// Run an MPC node: follow the contract, hold a key share, sign requests.
#[derive(clap::Args, Debug, Clone)]
pub struct NodeArgs {
    /// The node's TOML configuration file.
    #[arg(long)]
    pub config: PathBuf,
}

/// Why the node did not run: its configuration file is wrong (a user's input), or something
/// else stopped it (a key file, storage, a port).
#[derive(Debug)]
pub enum NodeError {
    Config(String),
    Failed(String),
}

/// Runs the node until SIGINT/SIGTERM, from synchronous code: starts a tokio runtime and a log
/// subscriber (`RUST_LOG`, default `info`).
pub fn run_blocking(args: NodeArgs) -> Result<(), NodeError> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
    let config =
        crate::config::Config::load(&args.config).map_err(|e| NodeError::Config(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| NodeError::Failed(e.to_string()))?;
    runtime
        .block_on(crate::daemon::run(config))
        .map_err(NodeError::Failed)
}
