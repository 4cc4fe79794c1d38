//! Command-line arguments of `chainsig devnet` (mountable as a clap subcommand).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::DevnetError;
use crate::node::{Devnet, DevnetConfig};

/// Run a local NEAR-compatible devnet.
#[derive(clap::Args, Debug, Clone)]
pub struct DevnetArgs {
    /// Home directory (a new chain is created when it is absent or empty).
    #[arg(long)]
    pub home: PathBuf,
    /// JSON-RPC listen address.
    #[arg(long, default_value = "127.0.0.1:3030")]
    pub rpc_addr: SocketAddr,
    /// Milliseconds between blocks.
    #[arg(long, default_value_t = 500)]
    pub block_time: u64,
    /// Blocks by which `final` lags the head (NEAR: about 2); 0 makes blocks final at once.
    #[arg(long, default_value_t = crate::node::DEFAULT_FINAL_LAG,
          value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub final_lag: u64,
    /// Chain id of a new chain.
    #[arg(long, default_value = "localnet")]
    pub chain_id: String,
}

impl DevnetArgs {
    pub fn config(&self) -> DevnetConfig {
        DevnetConfig {
            home: self.home.clone(),
            rpc_addr: self.rpc_addr,
            block_time: Duration::from_millis(self.block_time.max(1)),
            final_lag: self.final_lag,
            chain_id: self.chain_id.clone(),
            ..DevnetConfig::new(&self.home)
        }
    }
}

/// Runs the devnet until Ctrl-C, from synchronous code: starts a tokio runtime and, unless the
/// program already has one, a log subscriber (`RUST_LOG`, default `info`).
pub fn run_blocking(args: DevnetArgs) -> Result<(), DevnetError> {
    // Colours only on a terminal: a log file keeps plain `key=value` fields to grep.
    let _ = tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,vm=warn".into()),
        )
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

/// Runs the devnet until Ctrl-C.
pub async fn run(args: DevnetArgs) -> Result<(), DevnetError> {
    let devnet = Devnet::start(args.config()).await?;
    println!("devnet: JSON-RPC on {}", devnet.rpc_url());
    println!(
        "devnet: root account {} (key file {})",
        devnet.root_account(),
        args.home
            .join("keys")
            .join(format!("{}.json", devnet.root_account()))
            .display()
    );
    tokio::signal::ctrl_c().await?;
    devnet.stop().await;
    Ok(())
}
