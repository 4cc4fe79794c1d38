//! `chainsig-devnet`: runs the devnet by hand (the same arguments as `chainsig devnet`).

use clap::Parser;

#[derive(Parser)]
#[command(name = "chainsig-devnet", about = "Run a local NEAR-compatible devnet")]
struct Cli {
    #[command(flatten)]
    args: chainsig_devnet::cli::DevnetArgs,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = chainsig_devnet::cli::run_blocking(cli.args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
