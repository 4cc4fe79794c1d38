//! `chainsig-devnet`: runs the devnet by hand (the same arguments as `chainsig devnet`).

use clap::Parser;

#[derive(Parser)]
#[command(name = "chainsig-devnet", about = "Run a local NEAR-compatible devnet")]
struct Cli {
    #[command(flatten)]
    args: chainsig_devnet::cli::DevnetArgs,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,vm=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    if let Err(e) = chainsig_devnet::cli::run(cli.args).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
