//! `chainsig local up`: the devnet in this process, the contract, and N node processes;
//! ready once the contract is Running and every node has presignatures in stock. A node that
//! exits is started again (`supervise.rs`); only a signal stops the network.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chainsig_devnet::{Devnet, DevnetConfig};
use clap::Args;
use near_primitives::types::AccountId;

use super::children::{self, NodeProcess};
use super::files::{self, Home, Network, NetworkNode, Setup, UserKey};
use super::progress::{self, Observation, Watcher};
use super::setup::{self, Plan};
use super::signals::Shutdown;
use super::supervise::Supervisor;
use super::{node_files, wasm};
use crate::error::CliError;

const MAX_NODES: u32 = 16;
const MAX_USERS: u32 = 16;
/// How long a node gets to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Home directory of the network: created on the first start, resumed afterwards.
    #[arg(long, default_value = ".chainsig-local")]
    home: PathBuf,
    /// How many MPC nodes (default 3; fixed when the network is made).
    #[arg(long)]
    nodes: Option<u32>,
    /// How many nodes it takes to sign (default 2; fixed when the network is made).
    #[arg(long)]
    threshold: Option<u32>,
    /// How many user accounts to create (default 1; fixed when the network is made).
    #[arg(long)]
    users: Option<u32>,
    /// Milliseconds between blocks.
    #[arg(long, default_value_t = 200)]
    block_time: u64,
    /// Blocks by which `final` lags the head (NEAR: about 2; `near-final` lags by one);
    /// 0 makes every block final at once.
    #[arg(long, default_value_t = chainsig_devnet::node::DEFAULT_FINAL_LAG,
          value_parser = clap::value_parser!(u64).range(0..=1000))]
    final_lag: u64,
    /// The contract wasm (default: $CHAINSIG_CONTRACT_WASM, the workspace's build, or a
    /// fresh build from the source tree).
    #[arg(long)]
    contract_wasm: Option<PathBuf>,
    /// Give up if the network is not ready after this many seconds.
    #[arg(long, default_value_t = 900)]
    ready_timeout: u64,
    /// Leave a node that exits down instead of starting it again (to run it by hand, e.g.
    /// under a debugger).
    #[arg(long)]
    no_restart: bool,
}

/// The shape of a new network, checked.
struct Shape {
    nodes: u32,
    threshold: u32,
    users: u32,
}

fn check_shape(args: &UpArgs) -> Result<Shape, CliError> {
    let shape = Shape {
        nodes: args.nodes.unwrap_or(3),
        threshold: args.threshold.unwrap_or(2),
        users: args.users.unwrap_or(1),
    };
    if !(2..=MAX_NODES).contains(&shape.nodes) {
        return Err(CliError::Input(format!(
            "--nodes must be between 2 and {MAX_NODES}"
        )));
    }
    if shape.threshold < 2 || shape.threshold > shape.nodes {
        return Err(CliError::Input(format!(
            "--threshold must be between 2 and --nodes ({})",
            shape.nodes
        )));
    }
    if !(1..=MAX_USERS).contains(&shape.users) {
        return Err(CliError::Input(format!(
            "--users must be between 1 and {MAX_USERS}"
        )));
    }
    if !(10..=60_000).contains(&args.block_time) {
        return Err(CliError::Input(
            "--block-time must be between 10 and 60000 ms".into(),
        ));
    }
    Ok(shape)
}

/// On a resumed network the shape flags, if given, must match what was made.
fn check_resume(args: &UpArgs, setup: &Setup) -> Result<(), CliError> {
    let given = [
        ("--nodes", args.nodes, setup.nodes.len() as u32),
        ("--threshold", args.threshold, setup.threshold),
        ("--users", args.users, setup.users.len() as u32),
    ];
    for (flag, value, actual) in given {
        if value.is_some_and(|v| v != actual) {
            return Err(CliError::Input(format!(
                "{flag}: the network in {} was made with {actual}; use a new --home for another shape",
                args.home.display()
            )));
        }
    }
    Ok(())
}

enum Start {
    Fresh { wasm: Vec<u8>, rpc_port: u16 },
    Resume(Setup),
}

fn decide(args: &UpArgs, shape: &Shape, home: &Home) -> Result<Start, CliError> {
    if home.setup_file().is_file() {
        let setup: Setup = files::read_json(&home.setup_file())?;
        check_resume(args, &setup)?;
        return Ok(Start::Resume(setup));
    }
    let empty = std::fs::read_dir(&home.dir).map_or(true, |mut d| d.next().is_none());
    if !empty {
        return Err(CliError::Input(format!(
            "{} is not empty and holds no local network ({} is missing); use a new or empty --home",
            home.dir.display(),
            files::SETUP_FILE
        )));
    }
    let _ = shape;
    let (path, wasm) = wasm::load(args.contract_wasm.as_deref())?;
    println!("contract wasm: {}", path.display());
    Ok(Start::Fresh {
        wasm,
        rpc_port: node_files::free_port()?,
    })
}

pub fn run(args: UpArgs) -> Result<(), CliError> {
    let shape = check_shape(&args)?;
    let home = Home::new(node_files::absolute(&args.home)?);
    let start = decide(&args, &shape, &home)?;
    std::fs::create_dir_all(&home.dir)
        .map_err(|e| CliError::Failed(format!("{}: {e}", home.dir.display())))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the async runtime: {e}")))?;
    // `block_on` polls on this (the main) thread, where the nodes must be spawned.
    runtime.block_on(up(&args, &shape, &home, start))
}

async fn start_devnet(
    home: &Home,
    port: u16,
    block_time: u64,
    final_lag: u64,
) -> Result<Devnet, CliError> {
    let config = DevnetConfig {
        rpc_addr: ([127, 0, 0, 1], port).into(),
        block_time: Duration::from_millis(block_time),
        final_lag,
        tx_timeout: Duration::from_secs(30),
        ..DevnetConfig::new(home.devnet_dir())
    };
    Devnet::start(config)
        .await
        .map_err(|e| CliError::Failed(format!("devnet: {e}")))
}

async fn up(args: &UpArgs, shape: &Shape, home: &Home, start: Start) -> Result<(), CliError> {
    let mut shutdown = Shutdown::new()?;
    let rpc_port = match &start {
        Start::Fresh { rpc_port, .. } => *rpc_port,
        Start::Resume(setup) => setup.rpc_port,
    };
    let devnet = start_devnet(home, rpc_port, args.block_time, args.final_lag).await?;
    println!(
        "devnet: {} (blocks every {} ms, final {} blocks behind the head)",
        devnet.rpc_url(),
        args.block_time,
        args.final_lag
    );
    let setup = match start {
        Start::Resume(setup) => {
            println!("resuming the network in {}", home.dir.display());
            Ok(setup)
        }
        Start::Fresh { wasm, rpc_port } => {
            let plan = Plan {
                nodes: shape.nodes,
                threshold: shape.threshold,
                users: shape.users,
                rpc_port,
                wasm,
                block_time_ms: args.block_time,
            };
            make_network(home, &devnet, &plan).await
        }
    };
    let mut nodes = Vec::new();
    let result = match setup {
        Ok(setup) => run_network(args, home, &devnet, &setup, &mut nodes, &mut shutdown).await,
        Err(e) => Err(e),
    };
    children::stop_all(&mut nodes, STOP_GRACE);
    devnet.stop().await;
    if result.is_ok() {
        println!("stopped");
    }
    result
}

async fn make_network(home: &Home, devnet: &Devnet, plan: &Plan) -> Result<Setup, CliError> {
    let setup = setup::create(home, devnet, plan).await?;
    files::write_json(&home.setup_file(), &setup)?;
    Ok(setup)
}

async fn run_network(
    args: &UpArgs,
    home: &Home,
    devnet: &Devnet,
    setup: &Setup,
    nodes: &mut Vec<NodeProcess>,
    shutdown: &mut Shutdown,
) -> Result<(), CliError> {
    // A network.json from an earlier run would tell clients the network is ready.
    let _ = std::fs::remove_file(home.network_file());
    for node in setup.active_nodes() {
        nodes.push(start_node(home, node)?);
    }
    let contract: AccountId = setup
        .contract_id
        .parse()
        .map_err(|e| CliError::Failed(format!("local.json contract_id: {e}")))?;
    let watcher = Watcher::new(&devnet.rpc_url(), contract);
    let deadline = Duration::from_secs(args.ready_timeout);
    let mut supervisor = Supervisor::new(!args.no_restart);
    let waited = wait_ready(
        &watcher,
        home,
        setup,
        nodes,
        &mut supervisor,
        shutdown,
        deadline,
    );
    let Some(ready) = waited.await? else {
        return Ok(());
    };
    let network = network_file(home, devnet, setup, &ready)?;
    files::write_json(&home.network_file(), &network)?;
    let down: Vec<&str> = setup
        .active_nodes()
        .filter(|n| supervisor.is_down(&n.name))
        .map(|n| n.name.as_str())
        .collect();
    print_ready(home, &network, &down);
    serve(home, setup.clone(), nodes, &mut supervisor, shutdown).await;
    // Clients of a stopped network get "is `local up` running?" instead of a refused
    // connection.
    let _ = std::fs::remove_file(home.network_file());
    Ok(())
}

/// Polls until ready (every node still running has its stock); `None` when a signal asked
/// to stop first. Nodes that exit meanwhile are restarted; one left down for good is no
/// longer waited for, as long as a threshold of nodes remains.
async fn wait_ready(
    watcher: &Watcher,
    home: &Home,
    setup: &Setup,
    nodes: &mut [NodeProcess],
    supervisor: &mut Supervisor,
    shutdown: &mut Shutdown,
    timeout: Duration,
) -> Result<Option<Observation>, CliError> {
    let started = Instant::now();
    let mut printed = (String::new(), Instant::now());
    let mut last_state = String::new();
    loop {
        supervisor.step(home, setup, nodes);
        let named: Vec<(String, String)> = setup
            .active_nodes()
            .filter(|n| !supervisor.is_down(&n.name))
            .map(|n| (n.name.clone(), n.http_url.clone()))
            .collect();
        if named.len() < setup.threshold as usize {
            return Err(CliError::Failed(format!(
                "only {} of {} nodes are left running, fewer than the threshold {}: the \
                 network cannot sign (see the nodes' logs in {})",
                named.len(),
                setup.active_nodes().count(),
                setup.threshold,
                home.dir.join("nodes").display()
            )));
        }
        let observation = watcher.observe(&named).await;
        let state = progress::state_name(&observation.contract).to_owned();
        if state != last_state {
            if state == "Running" && !last_state.is_empty() {
                let key = progress::public_key(&observation.contract).unwrap_or_default();
                println!("DKG done: root key {key}");
            }
            last_state = state;
        }
        let line = observation.line();
        if line != printed.0 && printed.1.elapsed() >= Duration::from_secs(1) {
            println!("{line}");
            printed = (line, Instant::now());
        }
        if observation.is_ready(setup.presignatures_low) {
            return Ok(Some(observation));
        }
        if started.elapsed() > timeout {
            return Err(CliError::Failed(format!(
                "the network was not ready after {} s: {}",
                timeout.as_secs(),
                observation.line()
            )));
        }
        tokio::select! {
            biased;
            () = shutdown.recv() => return Ok(None),
            () = tokio::time::sleep(Duration::from_millis(300)) => {}
        }
    }
}

fn network_file(
    home: &Home,
    devnet: &Devnet,
    setup: &Setup,
    ready: &Observation,
) -> Result<Network, CliError> {
    let root_public_key = progress::public_key(&ready.contract)
        .ok_or_else(|| CliError::Failed("the contract is Running without a public key".into()))?;
    let users: Vec<UserKey> = setup
        .users
        .iter()
        .map(|account| UserKey {
            account_id: account.clone(),
            key_file: home.key_file(account),
        })
        .collect();
    let first = users
        .first()
        .cloned()
        .ok_or_else(|| CliError::Failed("local.json lists no user account".into()))?;
    let nodes = setup
        .active_nodes()
        .map(|node| NetworkNode {
            account_id: node.account_id.clone(),
            http_url: node.http_url.clone(),
            participant_id: progress::participant_id(&ready.contract, &node.account_id),
            config_file: node.config_file.clone(),
            pid_file: children::pid_file(home, &node.name),
        })
        .collect();
    Ok(Network {
        rpc_url: devnet.rpc_url(),
        contract_id: setup.contract_id.clone(),
        user_account: first.account_id,
        user_key_file: first.key_file,
        root_public_key,
        threshold: setup.threshold,
        nodes,
        users,
    })
}

/// `down`: nodes left down for good (the network is ready without them).
fn print_ready(home: &Home, network: &Network, down: &[&str]) {
    let down = if down.is_empty() {
        String::new()
    } else {
        format!(" ({} down)", down.join(", "))
    };
    println!(
        "ready: {} nodes{down}, threshold {}, contract {}, root key {}",
        network.nodes.len(),
        network.threshold,
        network.contract_id,
        network.root_public_key
    );
    println!("  rpc      {}", network.rpc_url);
    println!(
        "  user     {} (key {})",
        network.user_account,
        network.user_key_file.display()
    );
    println!("  network  {}", home.network_file().display());
    println!(
        "  try      chainsig sign --home {} --payload {} --path demo",
        home.dir.display(),
        "11".repeat(32)
    );
}

fn start_node(home: &Home, node: &files::NodeSetup) -> Result<NodeProcess, CliError> {
    let process = children::spawn(home, node)?;
    println!(
        "started {} (pid {}, log {})",
        node.name,
        process.pid(),
        process.log_file.display()
    );
    Ok(process)
}

/// Runs until a signal, restarting nodes that stop on their own (or are killed), and
/// following `local.json`: `local add-node` adds a node there (started here), `local
/// remove-node` marks one removed (stopped here).
async fn serve(
    home: &Home,
    mut setup: Setup,
    nodes: &mut Vec<NodeProcess>,
    supervisor: &mut Supervisor,
    shutdown: &mut Shutdown,
) {
    loop {
        supervisor.step(home, &setup, nodes);
        if let Ok(changed) = files::read_json::<Setup>(&home.setup_file()) {
            if changed != setup {
                follow_membership(home, &changed, nodes);
                setup = changed;
            }
        }
        // A signal first: nodes that Ctrl-C reached too must not be restarted.
        tokio::select! {
            biased;
            () = shutdown.recv() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// Starts the nodes `setup` adds and stops those it marks removed; keeps `network.json`'s
/// node list current.
fn follow_membership(home: &Home, setup: &Setup, nodes: &mut Vec<NodeProcess>) {
    for node in setup.active_nodes() {
        if nodes.iter().all(|p| p.name != node.name) {
            match start_node(home, node) {
                Ok(process) => nodes.push(process),
                Err(error) => println!("cannot start {}: {error}", node.name),
            }
        }
    }
    for node in setup.nodes.iter().filter(|n| n.removed) {
        if let Some(index) = nodes.iter().position(|p| p.name == node.name) {
            let mut process = nodes.remove(index);
            children::stop_all(std::slice::from_mut(&mut process), STOP_GRACE);
            println!("stopped {}: it left the network", node.name);
        }
    }
    if let Ok(mut network) = files::read_json::<Network>(&home.network_file()) {
        network.nodes = setup
            .active_nodes()
            .map(|node| NetworkNode {
                participant_id: network
                    .nodes
                    .iter()
                    .find(|n| n.account_id == node.account_id)
                    .and_then(|n| n.participant_id),
                account_id: node.account_id.clone(),
                http_url: node.http_url.clone(),
                config_file: node.config_file.clone(),
                pid_file: children::pid_file(home, &node.name),
            })
            .collect();
        let _ = files::write_json(&home.network_file(), &network);
    }
}
