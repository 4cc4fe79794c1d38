//! The node process: wires storage, chain access, indexer, mesh, coordinator and HTTP.

use crate::config::Config;

/// Runs the node until SIGINT/SIGTERM.
pub async fn run(config: Config) -> Result<(), String> {
    Err(format!(
        "node {}: the daemon is not wired yet",
        config.node.account_id
    ))
}
