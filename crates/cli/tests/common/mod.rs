//! What the process-level tests of the local network share: `chainsig local up` and its
//! output, `chainsig sign` requests checked against the derived key, the nodes' HTTP views.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use chainsig_primitives::{
    derive_public_key, derive_tweak, EcdsaPayload, PublicKey, SignatureResponse,
};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_chainsig");
pub const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// Kills the process when the test ends, passed or not.
pub struct Process {
    pub child: Child,
    pub name: &'static str,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) with a pid this test started (or read from the network's pid file).
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

pub fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

/// Waits until process `pid` has exited: gone, or a zombie its parent has not reaped yet whose
/// threads have all ended (the leader thread turns zombie first; the files, and the database
/// lock with them, close with the last thread). A node started again before its killed
/// predecessor is gone finds the database locked.
pub fn wait_exited(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    loop {
        let status = std::fs::read_to_string(proc_dir.join("status"));
        let zombie = status.as_ref().is_ok_and(|text| {
            text.lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'))
        });
        let threads = std::fs::read_dir(proc_dir.join("task")).map_or(0, |dir| dir.count());
        if status.is_err() || (zombie && threads <= 1) {
            return;
        }
        assert!(Instant::now() < deadline, "process {pid} never exited");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A running `chainsig local up`, its stdout read line by line on a thread.
pub struct LocalUp {
    pub process: Process,
    lines: Receiver<String>,
    pub seen: Vec<String>,
}

impl LocalUp {
    pub fn start(home: &Path, wasm: &Path, extra: &[&str]) -> LocalUp {
        let mut command = Command::new(BIN);
        command
            .args(["local", "up", "--home"])
            .arg(home)
            .arg("--contract-wasm")
            .arg(wasm);
        Self::spawn(command, extra)
    }

    /// `local up` as the README runs it, on a machine that has built nothing yet: no wasm
    /// named and none in `target_dir`, so it must build the contract (and install the wasm
    /// target if the toolchain lacks it) by itself.
    pub fn start_as_readme(home: &Path, target_dir: &Path, extra: &[&str]) -> LocalUp {
        let mut command = Command::new(BIN);
        command
            .env_remove(chainsig_devnet::signer_wasm::ENV_VAR)
            .env("CARGO_TARGET_DIR", target_dir)
            .args(["local", "up", "--home"])
            .arg(home);
        Self::spawn(command, extra)
    }

    pub fn spawn(mut command: Command, extra: &[&str]) -> LocalUp {
        let mut child = command
            .args(["--block-time", "100"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chainsig local up starts");
        let (tx, lines) = channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("[local up] {line}");
                    let _ = tx.send(line);
                }
            });
        }
        LocalUp {
            process: Process {
                child,
                name: "local up",
            },
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line starting with `prefix`; fails on an early exit or the timeout.
    pub fn wait_for(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(_) => {
                    if let Some(status) = self.process.child.try_wait().unwrap() {
                        panic!(
                            "{} exited ({status}) before `{prefix}`: {:?}",
                            self.process.name, self.seen
                        );
                    }
                }
            }
        }
        panic!("no `{prefix}` line after {timeout:?}: {:?}", self.seen);
    }

    /// SIGTERM, then the exit status within `timeout`.
    pub fn stop(mut self, timeout: Duration) -> std::process::ExitStatus {
        signal(self.process.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.process.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                    self.seen.push(line);
                }
                assert!(self.seen.iter().any(|l| l == "stopped"), "{:?}", self.seen);
                return status;
            }
            assert!(Instant::now() < deadline, "local up did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// One `chainsig sign --json` process.
pub fn start_sign(home: &Path, account: &str, path: &str, payload: &str) -> Child {
    Command::new(BIN)
        .args(["sign", "--json", "--home"])
        .arg(home)
        .args(["--account", account, "--path", path, "--payload", payload])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chainsig sign starts")
}

pub struct Request {
    pub account: String,
    pub path: String,
    pub payload: String,
    pub child: Child,
}

/// Starts `count` requests spread over the accounts and four paths.
pub fn start_requests(home: &Path, accounts: &[String], count: usize, tag: &str) -> Vec<Request> {
    (0..count)
        .map(|i| {
            let account = accounts[i % accounts.len()].clone();
            let path = format!("{tag}/{}", i % 4);
            let payload = format!("{:02x}{:062x}", i + 1, 0xc0ffee_u64 + i as u64);
            let child = start_sign(home, &account, &path, &payload);
            Request {
                account,
                path,
                payload,
                child,
            }
        })
        .collect()
}

/// Every request answered, and every signature valid under the derived key (checked here
/// again, independently of the command's own check).
pub fn expect_all_signed(requests: Vec<Request>, root: &PublicKey) {
    for request in requests {
        let output = request.child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "sign {} {} failed: {}{}",
            request.account,
            request.path,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
        let SignatureResponse::Secp256k1(signature) = serde_json::from_str(stdout.trim()).unwrap();
        let tweak = derive_tweak(&request.account, &request.path).unwrap();
        let key =
            PublicKey::from_affine(derive_public_key(root.as_affine(), &tweak).unwrap()).unwrap();
        let payload = EcdsaPayload::from_hex(&request.payload).unwrap();
        signature.verify(&key, &payload).unwrap();
    }
}

pub fn http_state(url: &str) -> Option<Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .get(format!("{url}/state"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        serde_json::from_slice(&response.bytes().await.ok()?).ok()
    })
}

/// `chainsig_signatures_total` from the node's `/metrics`: signatures it led.
pub fn signatures_led(url: &str) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let text = runtime.block_on(async {
        let response = reqwest::get(format!("{url}/metrics")).await.ok()?;
        String::from_utf8(response.bytes().await.ok()?.to_vec()).ok()
    });
    text.unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("chainsig_signatures_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

pub fn peers_up(state: &Value) -> Vec<u64> {
    state["peers_up"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// Waits until `check` holds for the node's `/state`.
pub fn wait_state(url: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(state) = http_state(url).filter(&check) {
            return state;
        }
        assert!(Instant::now() < deadline, "{url}: never {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub fn node_config(network: &Value, index: usize) -> (PathBuf, PathBuf, String) {
    let node = &network["nodes"][index];
    let config = PathBuf::from(node["config_file"].as_str().unwrap());
    let pid_file = PathBuf::from(node["pid_file"].as_str().unwrap());
    (
        config,
        pid_file,
        node["http_url"].as_str().unwrap().to_owned(),
    )
}

/// Runs `chainsig` to the end and returns its JSON output (it must succeed).
pub fn chainsig_json(args: &[&str]) -> Value {
    let output = Command::new(BIN)
        .args(args)
        .output()
        .expect("chainsig runs");
    assert!(
        output.status.success(),
        "chainsig {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

/// A scratch directory for a network: removed after the test, or kept when
/// `CHAINSIG_TEST_KEEP` is set (to read the nodes' logs).
pub struct Scratch {
    pub path: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

pub fn scratch_dir() -> Scratch {
    let dir = tempfile::tempdir().unwrap();
    if std::env::var_os("CHAINSIG_TEST_KEEP").is_some() {
        let path = dir.keep();
        eprintln!("keeping {}", path.display());
        return Scratch { path, _dir: None };
    }
    Scratch {
        path: dir.path().to_owned(),
        _dir: Some(dir),
    }
}

/// Runs `chainsig` to the end; returns its exit status and output.
pub fn chainsig(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("chainsig runs")
}

/// Runs `chainsig` to the end and returns its stdout; it must succeed.
pub fn chainsig_ok(args: &[&str]) -> String {
    let output = chainsig(args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "chainsig {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `chainsig bench` against the network in the background: the load a membership change
/// happens under. Every answer is verified by the command itself.
pub struct Bench {
    child: Child,
}

/// What a finished bench run reported.
#[derive(Debug)]
pub struct BenchReport {
    pub answered: usize,
    pub total: usize,
    /// Blocks from the `sign` transaction to the `respond`: p50, p95, p99.
    pub blocks_to_respond: [u64; 3],
    pub output: String,
}

impl Bench {
    pub fn start(home: &Path, requests: usize, rate: f64) -> Bench {
        let child = Command::new(BIN)
            .args(["bench", "--home"])
            .arg(home)
            .args(["--requests", &requests.to_string()])
            .args(["--rate", &rate.to_string(), "--concurrency", "200"])
            .args(["--ceiling-signatures", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chainsig bench starts");
        Bench { child }
    }

    /// Waits for the run to end and reads its table.
    pub fn finish(self) -> BenchReport {
        let output = self.child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!("[bench] {text}");
        let row = |name: &str| -> String {
            text.lines()
                .find(|l| l.starts_with(&format!("| {name} |")))
                .and_then(|l| l.split('|').nth(2))
                .unwrap_or_else(|| panic!("no `{name}` row: {text}"))
                .trim()
                .to_owned()
        };
        let answered = row("answered and verified");
        let (answered, total) = answered.split_once(" of ").expect("N of M");
        let blocks: Vec<u64> = row("blocks to the respond p50 / p95 / p99")
            .split(" / ")
            .map(|v| v.parse().unwrap_or(u64::MAX))
            .collect();
        BenchReport {
            answered: answered.parse().unwrap(),
            total: total.parse().unwrap(),
            blocks_to_respond: [blocks[0], blocks[1], blocks[2]],
            output: text,
        }
    }
}

/// The contract's `state()` as the network's RPC shows it (`Null` if it cannot be read).
pub fn contract_state(home: &Path) -> Value {
    let network = read_json(&home.join("network.json"));
    let contract: near_primitives::types::AccountId =
        network["contract_id"].as_str().unwrap().parse().unwrap();
    let client = chainsig_devnet::client::DevnetClient::new(network["rpc_url"].as_str().unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(client.view::<Value>(&contract, "state", &serde_json::json!({})))
        .unwrap_or(Value::Null)
}

/// Waits (at most `timeout`) until `check` holds for the contract's state.
pub fn wait_contract(
    home: &Path,
    what: &str,
    timeout: Duration,
    mut check: impl FnMut(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let state = contract_state(home);
        if check(&state) {
            return state;
        }
        assert!(Instant::now() < deadline, "never {what}: {state}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A node process started by the test (`chainsig node --config FILE`), e.g. to restart one
/// that was killed; killed when the test ends.
pub fn start_node(config: &Path, log: &Path) -> Process {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = Command::new(BIN)
        .args(["node", "--config"])
        .arg(config)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("chainsig node starts");
    Process {
        child,
        name: "node",
    }
}

/// Waits until the file at `path` has a line containing every one of `needles`, checking
/// every `poll`; returns false at the deadline.
pub fn wait_log(path: &Path, needles: &[&str], timeout: Duration, poll: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text
            .lines()
            .any(|line| needles.iter().all(|n| line.contains(n)))
        {
            return true;
        }
        std::thread::sleep(poll);
    }
    false
}

/// The pid `local up` wrote for a node.
pub fn node_pid(pid_file: &Path) -> u32 {
    std::fs::read_to_string(pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}
