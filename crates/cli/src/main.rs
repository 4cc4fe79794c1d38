//! `chainsig`: derive keys, run the engine demo (and, as the project grows, the devnet, the
//! nodes and the local network).

mod commands;
mod error;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "chainsig",
    version,
    about = "Chain signatures: one NEAR account, keys on every chain"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Derive the public key of (account, path) from the network's root public key.
    Derive(commands::derive::DeriveArgs),
    /// Run every MPC party in this process: keygen, triples, presignature, and a signature
    /// under a derived key, verified.
    Demo(commands::demo::DemoArgs),
    /// Run a local NEAR-compatible chain that executes the real contract wasm.
    Devnet(chainsig_devnet::cli::DevnetArgs),
    /// Run an MPC node from its configuration file.
    Node(chainsig_node::cli::NodeArgs),
    /// Vote as a node's operator: admit a candidate or remove a participant.
    Vote(chainsig_node::cli::VoteArgs),
    /// A whole network on this machine: devnet, contract and MPC nodes.
    #[command(subcommand)]
    Local(commands::local::LocalCommand),
    /// Ask the local network for a signature (a real `sign` transaction) and verify it.
    Sign(commands::sign::SignArgs),
    /// Measure the local network: signatures per second and latency, next to the engine's
    /// in-process ceiling.
    Bench(commands::bench::BenchArgs),
    /// Ethereum: build, sign and (optionally) relay transactions from a derived address.
    #[command(subcommand)]
    Eth(chainsig_chains::cli::EthCommand),
    /// Bitcoin: build, sign and (optionally) relay P2WPKH spends from a derived address.
    #[command(subcommand)]
    Btc(chainsig_chains::cli::BtcCommand),
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`chainsig … | head -1`) would panic;
/// a command-line tool should simply stop, as other Unix tools do. Called before any thread
/// exists (argument parsing starts none).
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called at the start of `main`, before any other thread exists; SIG_DFL is a
    // valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn node_error(error: chainsig_node::cli::NodeError) -> error::CliError {
    match error {
        chainsig_node::cli::NodeError::Config(message) => error::CliError::Input(message),
        chainsig_node::cli::NodeError::Failed(message) => error::CliError::Failed(message),
    }
}

fn main() {
    let cli = Cli::parse();
    // Long-running servers keep Rust's default: a peer that goes away while we write to its
    // socket must be an error on that socket (EPIPE), not the end of the whole process.
    if !matches!(
        cli.command,
        Command::Node(_) | Command::Devnet(_) | Command::Local(_)
    ) {
        restore_default_sigpipe();
    }
    let result = match cli.command {
        Command::Derive(args) => commands::derive::run(args),
        Command::Demo(args) => commands::demo::run(args),
        Command::Devnet(args) => chainsig_devnet::cli::run_blocking(args)
            .map_err(|e| error::CliError::Failed(e.to_string())),
        Command::Node(args) => chainsig_node::cli::run_blocking(args).map_err(node_error),
        Command::Vote(args) => chainsig_node::cli::vote_blocking(args)
            .map(|said| println!("{said}"))
            .map_err(node_error),
        Command::Local(command) => commands::local::run(command),
        Command::Sign(args) => commands::sign::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Eth(command) => commands::chains::print(chainsig_chains::cli::run_eth_with(
            command,
            &commands::chains::home_signer,
        )),
        Command::Btc(command) => commands::chains::print(chainsig_chains::cli::run_btc_with(
            command,
            &commands::chains::home_signer,
        )),
    };
    if let Err(error) = result {
        eprintln!("error: {error}");
        std::process::exit(error.exit_code());
    }
}
