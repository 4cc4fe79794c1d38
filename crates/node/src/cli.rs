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
    // Colours only on a terminal: a log file keeps plain `key=value` fields to grep.
    let _ = tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
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

/// Vote as a node's operator: admit a candidate, remove a participant, or cancel a reshare.
/// The vote is sent with the node's own account key, as the contract requires of participants.
#[derive(clap::Args, Debug, Clone)]
pub struct VoteArgs {
    /// The voting node's TOML configuration file (its account, key file, RPC and contract).
    #[arg(long)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub vote: Vote,
}

#[derive(clap::Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Vote {
    /// Admit a candidate that has called `join`.
    Join {
        /// The candidate's NEAR account.
        candidate: String,
    },
    /// Remove a participant (this node included).
    Leave {
        /// The participant's NEAR account.
        participant: String,
    },
    /// Give up the reshare under way: at a threshold of the old participants' votes the
    /// network runs on with the old set, threshold, key and epoch.
    CancelResharing,
}

/// Sends the vote; returns what to print (whether it started the reshare).
pub async fn vote(config: &crate::config::Config, vote: &Vote) -> Result<String, NodeError> {
    let (method, args, who) = match vote {
        Vote::Join { candidate } => (
            "vote_join",
            serde_json::json!({ "candidate": candidate }),
            Some(candidate),
        ),
        Vote::Leave { participant } => (
            "vote_leave",
            serde_json::json!({ "participant": participant }),
            Some(participant),
        ),
        Vote::CancelResharing => ("vote_cancel_resharing", serde_json::json!({}), None),
    };
    if let Some(who) = who {
        who.parse::<near_account_id::AccountId>()
            .map_err(|e| NodeError::Config(format!("{who}: {e}")))?;
    }
    let key = crate::keys::load_account_key(&config.node.account_key_file, &config.node.account_id)
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let contract = config
        .near
        .contract_id
        .parse()
        .map_err(|e| NodeError::Config(format!("near.contract_id: {e}")))?;
    let chain = crate::chain::ChainClient::new(&config.near.rpc_url, contract, Some(key))
        .with_finality(config.near.finality);
    let result = chain
        .call(method, &args, 30, 0)
        .await
        .map_err(|e| NodeError::Failed(format!("{method}: {e}")))?;
    let passed = serde_json::from_slice::<bool>(&result).unwrap_or(false);
    let subject = who.map_or(String::new(), |w| format!(" {w}"));
    Ok(match (passed, vote) {
        (true, Vote::CancelResharing) => {
            format!("{method}: voted; the reshare is cancelled, the old set runs on")
        }
        (true, _) => format!("{method}{subject}: voted; the network is resharing"),
        (false, _) => format!("{method}{subject}: voted; more votes are needed"),
    })
}

/// [`vote`] from synchronous code.
pub fn vote_blocking(args: VoteArgs) -> Result<String, NodeError> {
    let config =
        crate::config::Config::load(&args.config).map_err(|e| NodeError::Config(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| NodeError::Failed(e.to_string()))?;
    runtime.block_on(vote(&config, &args.vote))
}
