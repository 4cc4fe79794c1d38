//! The node processes: `<this exe> node --config FILE`, output to `node.log`, pid in `pid`.
//! Stopped with SIGTERM, then SIGKILL after a grace period.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::files::{Home, NodeSetup};
use crate::error::CliError;

pub struct NodeProcess {
    pub name: String,
    pub log_file: PathBuf,
    /// When this process was started.
    pub started: Instant,
    /// The log's length when it was started: what it wrote comes after.
    log_start: u64,
    pid_file: PathBuf,
    child: Child,
    exited: Option<ExitStatus>,
}

pub fn log_file(home: &Home, name: &str) -> PathBuf {
    home.node_dir(name).join("node.log")
}

pub fn pid_file(home: &Home, name: &str) -> PathBuf {
    home.node_dir(name).join("pid")
}

/// Starts one node. Must be called on the thread that lives as long as the network (the
/// main thread): on Linux the child gets SIGTERM when that thread ends, so a crashed
/// `local up` does not leave nodes behind.
pub fn spawn(home: &Home, node: &NodeSetup) -> Result<NodeProcess, CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Failed(format!("cannot find this program's path: {e}")))?;
    let log_file = log_file(home, &node.name);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_file)
        .map_err(|e| CliError::Failed(format!("{}: {e}", log_file.display())))?;
    let log_start = log.metadata().map_or(0, |m| m.len());
    let log2 = log
        .try_clone()
        .map_err(|e| CliError::Failed(format!("{}: {e}", log_file.display())))?;
    let mut command = Command::new(exe);
    command
        .arg("node")
        .arg("--config")
        .arg(&node.config_file)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    die_with_parent(&mut command);
    let child = command
        .spawn()
        .map_err(|e| CliError::Failed(format!("cannot start {}: {e}", node.name)))?;
    let pid_file = pid_file(home, &node.name);
    std::fs::write(&pid_file, child.id().to_string())
        .map_err(|e| CliError::Failed(format!("{}: {e}", pid_file.display())))?;
    Ok(NodeProcess {
        name: node.name.clone(),
        log_file,
        started: Instant::now(),
        log_start,
        pid_file,
        child,
        exited: None,
    })
}

#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

impl NodeProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, once, the first time the process is seen to have ended.
    pub fn newly_exited(&mut self) -> Option<ExitStatus> {
        if self.exited.is_some() {
            return None;
        }
        let status = self.child.try_wait().ok().flatten()?;
        self.exited = Some(status);
        Some(status)
    }

    pub fn is_running(&mut self) -> bool {
        self.newly_exited();
        self.exited.is_none()
    }

    fn signal(&self, signal: i32) {
        #[cfg(unix)]
        // SAFETY: kill(2) on our own child's pid; it has not been reaped (we hold `Child`
        // and only `try_wait` reaps it), so the pid cannot belong to another process.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, signal);
        }
    }
}

impl NodeProcess {
    /// The last error this process wrote to its log (the node's own `error: …` line as it
    /// exits, an `ERROR` log line, a panic), if any.
    pub fn last_error_line(&self) -> Option<String> {
        last_error_line(&self.log_file, self.log_start)
    }
}

/// The last error line of the log at `path` after byte `from`, `error: ` taken off.
pub fn last_error_line(path: &Path, from: u64) -> Option<String> {
    let text = std::fs::read(path).ok()?;
    let text = text.get(usize::try_from(from).ok()?..)?;
    let text = String::from_utf8_lossy(text);
    let line = text.lines().rev().find(|line| {
        line.starts_with("error: ") || line.contains(" ERROR ") || line.contains(" panicked at ")
    })?;
    let line = line.strip_prefix("error: ").unwrap_or(line).trim();
    Some(line.chars().take(MAX_REASON).collect())
}

/// Characters of a log line quoted as the reason a node exited.
const MAX_REASON: usize = 400;

/// SIGTERM to every running node, SIGKILL to those still running after `grace`.
pub fn stop_all(nodes: &mut [NodeProcess], grace: Duration) {
    #[cfg(unix)]
    for node in nodes.iter_mut() {
        if node.is_running() {
            node.signal(libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && nodes.iter_mut().any(NodeProcess::is_running) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for node in nodes.iter_mut() {
        if node.is_running() {
            eprintln!("{} did not stop within {grace:?}: killing it", node.name);
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
    }
    for node in nodes.iter() {
        let _ = std::fs::remove_file(&node.pid_file);
    }
}
