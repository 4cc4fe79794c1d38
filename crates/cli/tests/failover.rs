//! Failover on a local network of real processes, at (4, 3) on 100 ms blocks: a node killed
//! under load (the requests it led are taken over at once, not after `sign_ms` or the
//! mesh's peer timeout), restarted behind the chain (left out of runs until it has caught up,
//! then serving again), and a node that stays up but goes mute (left out of new runs after
//! its runs fail, taken back once it has recovered).
//!
//! The tests run one after the other: each is a whole network on a 2-core machine.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

static ONE_NETWORK_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Requests per second: low enough that a debug build keeps its stock on two cores.
const RATE: f64 = 2.0;

/// Requests after a kill, at one a second. A kill at (4, 3) leaves usable only the third of
/// each node's presignatures and triples that do not include the dead node; a debug build on
/// two cores takes tens of seconds for a new triple batch among the others, so more requests
/// than the stock left would wait on the refill, which says nothing about failover (a release
/// build refills in well under a second: BENCHMARKS.md).
const AFTER_KILL: usize = 12;

/// p99 blocks to the `respond` allowed after a kill. Before a closed connection counted as
/// down, the requests the killed node led waited out the mesh's 3 s peer timeout (30 blocks)
/// plus a run's grace; `sign_ms` (10 s, 100 blocks) bounded a silent leader. The release
/// figure at 200 ms blocks is in BENCHMARKS.md; a debug build on a shared machine is slower.
const MAX_P99_AFTER_KILL: u64 = 20;

struct Node {
    dir: PathBuf,
    http_url: String,
}

impl Node {
    fn new(home: &Path, index: usize) -> Node {
        let setup = read_json(&home.join("local.json"));
        let entry = &setup["nodes"][index];
        Node {
            dir: home.join("nodes").join(entry["name"].as_str().unwrap()),
            http_url: entry["http_url"].as_str().unwrap().to_owned(),
        }
    }

    fn log(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    fn config(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    fn pid(&self) -> u32 {
        node_pid(&self.dir.join("pid"))
    }

    fn participant_id(&self) -> u64 {
        http_state(&self.http_url)
            .and_then(|s| s["participant_id"].as_u64())
            .expect("a participant")
    }

    fn kill(&self) {
        let pid = self.pid();
        signal(pid, libc::SIGKILL);
        wait_exited(pid);
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }
}

/// A stocked network of four, this test's alone while it lives.
struct Network {
    _one: MutexGuard<'static, ()>,
    _dir: Scratch,
    up: LocalUp,
    home: PathBuf,
    nodes: Vec<Node>,
}

fn stocked_network() -> Network {
    let one = ONE_NETWORK_AT_A_TIME
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let (dir, up, home) = start_network();
    let nodes: Vec<Node> = (0..4).map(|i| Node::new(&home, i)).collect();
    wait_stocked(&nodes.iter().collect::<Vec<_>>());
    Network {
        _one: one,
        _dir: dir,
        up,
        home,
        nodes,
    }
}

fn start_network() -> (Scratch, LocalUp, PathBuf) {
    let wasm = chainsig_devnet::signer_wasm::locate().expect("the contract wasm");
    let dir = scratch_dir();
    let home = dir.path.join("net");
    // The tests kill and restart nodes themselves (one of them with a fault switched on).
    let mut up = LocalUp::start(
        &home,
        &wasm,
        &["--nodes", "4", "--threshold", "3", "--no-restart"],
    );
    up.wait_for("ready", READY_TIMEOUT);
    (dir, up, home)
}

/// Waits until each node has presignatures and triples in stock.
fn wait_stocked(nodes: &[&Node]) {
    for node in nodes {
        wait_state(&node.http_url, "stocked", |s| {
            s["presignatures_owned"].as_u64() >= Some(12) && s["triples_owned"].as_u64() >= Some(8)
        });
    }
}

fn assert_all_answered(report: &BenchReport) {
    assert_eq!(report.answered, report.total, "{}", report.output);
}

#[test]
fn a_killed_node_is_replaced_at_once_and_serves_again_once_caught_up() {
    // Every field bound: the lock and the scratch directory live to the end of the test.
    let Network {
        _one,
        _dir,
        up,
        home,
        nodes,
    } = stocked_network();

    // Killed under load: a quarter of the requests in flight had it as their leader.
    let bench = Bench::start(&home, 5 + AFTER_KILL, 1.0);
    std::thread::sleep(Duration::from_secs(5));
    let victim = &nodes[1];
    victim.kill();
    let report = bench.finish();
    assert_all_answered(&report);
    assert!(
        report.blocks_to_respond[2] <= MAX_P99_AFTER_KILL,
        "p99 {} blocks after the kill: {}",
        report.blocks_to_respond[2],
        report.output
    );

    // Restarted 50 blocks behind the chain: its indexer resumes from its checkpoint. Peers
    // leave it out of their runs until it has caught up, so it never meets an announcement
    // for a request it has not seen; then it leads again.
    std::thread::sleep(Duration::from_secs(5));
    let restarted = start_node(&victim.config(), &victim.log());
    let bench = Bench::start(&home, 30, RATE);
    let deadline = Instant::now() + Duration::from_secs(120);
    while signatures_led(&victim.http_url) == 0 {
        assert!(
            Instant::now() < deadline,
            "the restarted node never led a signature"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let report = bench.finish();
    assert_all_answered(&report);
    let log = victim.log_text();
    let after_restart = &log[log.rfind("node started").unwrap()..];
    assert!(
        !after_restart.contains("not ready for"),
        "the restarted node was put into runs before it caught up:\n{after_restart}"
    );
    drop(restarted);
    assert!(up.stop(Duration::from_secs(30)).success());
}

/// Whether any of `nodes`' logs has a line with every one of `needles`.
fn any_log_has(nodes: &[&Node], needles: &[&str]) -> bool {
    nodes.iter().any(|node| {
        node.log_text()
            .lines()
            .any(|line| needles.iter().all(|n| line.contains(n)))
    })
}

fn wait_any_log(nodes: &[&Node], needles: &[&str], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !any_log_has(nodes, needles) {
        assert!(Instant::now() < deadline, "no node logged {needles:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_mute_participant_is_left_out_and_taken_back_when_it_recovers() {
    // Every field bound: the lock and the scratch directory live to the end of the test.
    let Network {
        _one,
        _dir,
        up,
        home,
        nodes,
    } = stocked_network();
    let mute = &nodes[3];
    let mute_id = format!("participant #{}", mute.participant_id());
    let others: Vec<&Node> = nodes[..3].iter().collect();

    // node3 comes back mute: up on the mesh, in everyone's presignatures, silent in runs.
    mute.kill();
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(mute.log())
        .unwrap();
    let child = Command::new(BIN)
        .args(["node", "--config"])
        .arg(mute.config())
        .env(chainsig_node::faults::MUTE_RUNS_ENV, "1")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let muted = Process {
        child,
        name: "mute node",
    };
    wait_state(&mute.http_url, "serving again", |s: &Value| {
        s["serving_epoch"].is_u64()
    });
    // Every request is answered: the runs that wait on it time out, the others leave it out.
    let report = Bench::start(&home, 20, RATE).finish();
    assert_all_answered(&report);
    wait_any_log(
        &others,
        &["leaving a failing participant out of new runs", &mute_id],
        Duration::from_secs(60),
    );

    // It recovers (restarted without the fault): once its back-off is over, a run with it
    // succeeds and it is back.
    drop(muted);
    let pid_gone = Instant::now();
    let _recovered = start_node(&mute.config(), &mute.log());
    let bench = Bench::start(&home, 60, RATE / 2.0);
    wait_any_log(
        &others,
        &["a failing participant is back", &mute_id],
        Duration::from_secs(150),
    );
    eprintln!("taken back {:?} after the restart", pid_gone.elapsed());
    assert_all_answered(&bench.finish());
    assert!(up.stop(Duration::from_secs(30)).success());
}
