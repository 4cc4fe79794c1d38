//! `chainsig local`: a whole chain-signatures network on this machine, and the files its
//! clients (`sign`, `derive --home`, `bench`) read.

pub mod ceiling;
mod children;
pub mod files;
mod node_files;
pub mod progress;
mod setup;
mod signals;
pub mod signing;
mod up;
mod wasm;

use clap::Subcommand;

use crate::error::CliError;

#[derive(Subcommand)]
pub enum LocalCommand {
    /// Start (or resume) a local network: devnet, contract, N MPC nodes; runs until Ctrl-C.
    Up(up::UpArgs),
}

pub fn run(command: LocalCommand) -> Result<(), CliError> {
    match command {
        LocalCommand::Up(args) => up::run(args),
    }
}
