//! `chainsig bench`: many `sign` requests against a running local network, every answer
//! verified; throughput and latency (ms and blocks), next to the engine's in-process
//! ceiling for the same (n, t) on this machine.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chainsig_primitives::EcdsaPayload;
use clap::Args;
use tokio::sync::Semaphore;

use super::local::ceiling;
use super::local::files::Network;
use super::local::progress::{self, Watcher};
use super::local::signing::{SignClient, Signed};
use crate::error::CliError;

#[derive(Args)]
pub struct BenchArgs {
    /// Home directory of a running local network.
    #[arg(long, default_value = ".chainsig-local")]
    home: PathBuf,
    /// How many sign requests.
    #[arg(long, default_value_t = 100)]
    requests: usize,
    /// At most this many requests in flight.
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
    /// Start requests at this fixed rate (per second) instead of as fast as allowed.
    #[arg(long)]
    rate: Option<f64>,
    /// How many different derivation paths to spread the requests over.
    #[arg(long, default_value_t = 4)]
    paths: usize,
    /// The account that signs (default: the network's user).
    #[arg(long)]
    account: Option<String>,
    /// Signatures for the engine's in-process ceiling (0 skips it).
    #[arg(long, default_value_t = 64)]
    ceiling_signatures: usize,
}

fn check(args: &BenchArgs) -> Result<(), CliError> {
    if !(1..=100_000).contains(&args.requests) {
        return Err(CliError::Input(
            "--requests must be between 1 and 100000".into(),
        ));
    }
    if !(1..=1024).contains(&args.concurrency) {
        return Err(CliError::Input(
            "--concurrency must be between 1 and 1024".into(),
        ));
    }
    if args.rate.is_some_and(|r| !(r > 0.0 && r <= 10_000.0)) {
        return Err(CliError::Input(
            "--rate must be above 0 and at most 10000".into(),
        ));
    }
    if !(1..=1000).contains(&args.paths) {
        return Err(CliError::Input("--paths must be between 1 and 1000".into()));
    }
    Ok(())
}

pub fn run(args: BenchArgs) -> Result<(), CliError> {
    check(&args)?;
    let network = Network::load(&args.home)?;
    let (n, t) = (network.nodes.len() as u32, network.threshold as usize);
    if n < 2 || t < 2 || t > n as usize {
        return Err(CliError::Failed(format!(
            "network.json: {n} nodes with threshold {t} is not a network"
        )));
    }
    let client = Arc::new(SignClient::new(
        &network,
        &args.home,
        args.account.as_deref(),
    )?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the async runtime: {e}")))?;
    println!(
        "bench: {} requests, concurrency {}{}, {n} nodes, threshold {t}, as {}",
        args.requests,
        args.concurrency,
        args.rate.map_or(String::new(), |r| format!(", {r}/s")),
        client.account()
    );
    // The ceiling first, on a quiet machine: the nodes fill their stockpiles in the
    // background, and after the run they would be refilling them.
    let ceiling = (args.ceiling_signatures > 0)
        .then(|| {
            runtime.block_on(wait_idle(&network));
            ceiling::measure(n, t, args.ceiling_signatures)
        })
        .transpose()
        .map_err(CliError::Failed)?;
    let run = runtime.block_on(send_all(&client, &args))?;
    print_table(&run, ceiling.as_ref(), n, t);
    match run.failures.first() {
        None => Ok(()),
        Some(first) => Err(CliError::Failed(format!(
            "{} of {} requests failed; the first: {first}",
            run.failures.len(),
            args.requests
        ))),
    }
}

/// Waits (at most a minute) until no node's stock has changed for two seconds.
async fn wait_idle(network: &Network) {
    let Ok(contract) = network.contract_id.parse() else {
        return;
    };
    let watcher = Watcher::new(&network.rpc_url, contract);
    let nodes: Vec<(String, String)> = network
        .nodes
        .iter()
        .map(|n| (n.account_id.clone(), n.http_url.clone()))
        .collect();
    let stock = |o: &progress::Observation| -> Vec<(usize, usize)> {
        o.nodes
            .iter()
            .map(|n| (n.triples, n.presignatures))
            .collect()
    };
    let started = Instant::now();
    let mut last = (Vec::new(), Instant::now());
    while started.elapsed() < Duration::from_secs(60) {
        let now = stock(&watcher.observe(&nodes).await);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() >= Duration::from_secs(2) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!("the nodes are still generating after a minute; measuring anyway");
}

struct Run {
    answered: Vec<Signed>,
    /// When each answer came, from the start of the run.
    finished: Vec<Duration>,
    failures: Vec<String>,
    elapsed: Duration,
}

/// A payload no other request of this run has (and below the curve order).
fn payload(index: usize) -> EcdsaPayload {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    bytes[0] &= 0x7f;
    bytes[24..].copy_from_slice(&(index as u64).to_be_bytes());
    EcdsaPayload::from_bytes(bytes).expect("below the curve order")
}

async fn send_all(client: &Arc<SignClient>, args: &BenchArgs) -> Result<Run, CliError> {
    let slots = Arc::new(Semaphore::new(args.concurrency));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.requests);
    for index in 0..args.requests {
        if let Some(rate) = args.rate {
            let due = started + Duration::from_secs_f64(index as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| CliError::Failed(e.to_string()))?;
        let client = client.clone();
        let path = format!("bench-{}", index % args.paths);
        tasks.push(tokio::spawn(async move {
            let result = client.sign(&payload(index), &path).await;
            drop(permit);
            result.map(|signed| (signed, started.elapsed()))
        }));
    }
    let mut run = Run {
        answered: Vec::new(),
        finished: Vec::new(),
        failures: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        match task.await {
            Ok(Ok((signed, at))) => {
                run.answered.push(signed);
                run.finished.push(at);
            }
            Ok(Err(e)) => run.failures.push(e.to_string()),
            Err(e) => run.failures.push(format!("request task failed: {e}")),
        }
    }
    run.elapsed = started.elapsed();
    Ok(run)
}

/// The value at quantile `q` (nearest rank) of sorted values.
fn quantile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn percentiles<T: Copy + Ord + std::fmt::Display>(mut values: Vec<T>) -> String {
    values.sort_unstable();
    let show = |q| quantile(&values, q).map_or("-".to_string(), |v| v.to_string());
    format!("{} / {} / {}", show(0.50), show(0.95), show(0.99))
}

fn print_table(run: &Run, ceiling: Option<&ceiling::Ceiling>, n: u32, t: usize) {
    let answered = run.answered.len();
    let total = answered + run.failures.len();
    let throughput = answered as f64 / run.elapsed.as_secs_f64().max(1e-9);
    // The second half of the run: by then the stock the nodes had at the start is spent,
    // so this is what they sustain.
    let half = run.elapsed / 2;
    let late = run.finished.iter().filter(|&&at| at > half).count();
    let sustained = late as f64 / half.as_secs_f64().max(1e-9);
    let ms = percentiles(run.answered.iter().map(|s| s.latency.as_millis()).collect());
    let respond = percentiles(
        run.answered
            .iter()
            .filter_map(|s| s.blocks_to_respond)
            .collect(),
    );
    let blocks = percentiles(run.answered.iter().map(|s| s.blocks).collect());
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| answered and verified | {answered} of {total} |");
    println!("| wall time | {:.2} s |", run.elapsed.as_secs_f64());
    println!("| throughput | {throughput:.2} signatures/s |");
    println!("| throughput, second half | {sustained:.2} signatures/s |");
    println!("| latency p50 / p95 / p99 | {ms} ms |");
    println!("| blocks to the respond p50 / p95 / p99 | {respond} |");
    println!("| blocks to the answer p50 / p95 / p99 | {blocks} |");
    if let Some(c) = ceiling {
        println!(
            "| engine ceiling ({n}, {t}), in-process, {} threads | {:.2} signatures/s ({} in {:.2} s) |",
            c.threads,
            c.per_second(),
            c.signatures,
            c.elapsed.as_secs_f64()
        );
        println!(
            "| second-half throughput / ceiling | {:.0}% |",
            100.0 * sustained / c.per_second().max(1e-9)
        );
    }
}
