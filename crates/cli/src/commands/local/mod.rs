//! `chainsig local`: a whole chain-signatures network on this machine, and the files its
//! clients (`sign`, `derive --home`, `bench`) read.

pub mod ceiling;
mod children;
pub mod files;
mod membership;
mod node_files;
pub mod progress;
mod setup;
mod signals;
pub mod signing;
mod supervise;
mod up;
mod wasm;

use clap::Subcommand;

use crate::error::CliError;

#[derive(Subcommand)]
pub enum LocalCommand {
    /// Start (or resume) a local network: devnet, contract, N MPC nodes; runs until Ctrl-C.
    Up(up::UpArgs),
    /// Add a node to the running network: it joins, the local operators vote it in, and the
    /// network reshares the same key to it. Waits until it is a participant.
    AddNode(membership::AddNodeArgs),
    /// Remove a node: the local operators vote it out and the network reshares without it.
    /// Waits until it has left; `local up` then stops it.
    RemoveNode(membership::RemoveNodeArgs),
}

pub fn run(command: LocalCommand) -> Result<(), CliError> {
    match command {
        LocalCommand::Up(args) => up::run(args),
        LocalCommand::AddNode(args) => membership::add(args),
        LocalCommand::RemoveNode(args) => membership::remove(args),
    }
}
