//! Keeping the nodes of `local up` running. A node that exits without `local up` asking it to
//! (a crash, a failure at start, a SIGKILL from a test or an operator) is reported, with its
//! exit status and the last error in its log, and started again after a back-off: 1 s,
//! doubling up to 30 s, back to 1 s once a run has lasted a minute. A node that keeps failing
//! soon after it starts (a damaged database does that every time) is left down after a few
//! tries, saying so; the other nodes keep running. Only a signal to `local up` stops them all.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::children::{self, NodeProcess};
use super::files::{Home, Setup};

/// The first wait before a restart.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait before a restart.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run at least this long was a healthy one: the back-off starts over.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
/// Exits within [`HEALTHY_RUN`] of starting, one after another, before giving up on a node.
const QUICK_FAILURES: u32 = 4;

/// What to do about a node that exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    RestartIn(Duration),
    /// It failed this many times in a row soon after starting.
    GiveUp(u32),
}

/// One node's restart history.
#[derive(Debug)]
struct Backoff {
    next: Duration,
    quick_failures: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: FIRST_BACKOFF,
            quick_failures: 0,
        }
    }
}

impl Backoff {
    /// The node exited after running for `ran`.
    fn exited(&mut self, ran: Duration) -> Next {
        if ran >= HEALTHY_RUN {
            *self = Backoff::default();
            return Next::RestartIn(FIRST_BACKOFF);
        }
        self.quick_failures += 1;
        if self.quick_failures >= QUICK_FAILURES {
            return Next::GiveUp(self.quick_failures);
        }
        let wait = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        Next::RestartIn(wait)
    }
}

#[derive(Default)]
struct Watched {
    backoff: Backoff,
    /// When to start it again.
    restart_at: Option<Instant>,
    /// Left down for good (it kept failing, or restarts are off).
    down: bool,
}

pub struct Supervisor {
    restart: bool,
    nodes: HashMap<String, Watched>,
}

impl Supervisor {
    /// `restart` false: report exits only (`local up --no-restart`).
    pub fn new(restart: bool) -> Self {
        Supervisor {
            restart,
            nodes: HashMap::new(),
        }
    }

    /// Whether `name` was left down for good.
    pub fn is_down(&self, name: &str) -> bool {
        self.nodes.get(name).is_some_and(|w| w.down)
    }

    /// Reports the nodes that exited since the last call, and starts again those whose wait
    /// is over. Called on the main thread (see [`children::spawn`]).
    pub fn step(&mut self, home: &Home, setup: &Setup, nodes: &mut [NodeProcess]) {
        let now = Instant::now();
        for node in nodes.iter_mut() {
            if let Some(status) = node.newly_exited() {
                let ran = node.started.elapsed();
                let why = node
                    .last_error_line()
                    .map_or_else(String::new, |line| format!(": {line}"));
                println!(
                    "{} exited ({status}) after {} s{why}",
                    node.name,
                    ran.as_secs()
                );
                self.exited(node, ran, now);
            }
        }
        for node in nodes.iter_mut() {
            let Some(watched) = self.nodes.get_mut(&node.name) else {
                continue;
            };
            if watched.restart_at.is_none_or(|at| at > now) {
                continue;
            }
            watched.restart_at = None;
            // A node removed from the network meanwhile stays stopped.
            let Some(config) = setup.active_nodes().find(|n| n.name == node.name) else {
                continue;
            };
            match children::spawn(home, config) {
                Ok(process) => {
                    println!(
                        "restarted {} (pid {}, log {})",
                        process.name,
                        process.pid(),
                        process.log_file.display()
                    );
                    *node = process;
                }
                Err(error) => {
                    println!("cannot restart {}: {error}", node.name);
                    self.exited(node, Duration::ZERO, now);
                }
            }
        }
    }

    fn exited(&mut self, node: &NodeProcess, ran: Duration, now: Instant) {
        let watched = self.nodes.entry(node.name.clone()).or_default();
        if !self.restart {
            watched.down = true;
            println!(
                "not restarting {} (--no-restart); its log: {}",
                node.name,
                node.log_file.display()
            );
            return;
        }
        match watched.backoff.exited(ran) {
            Next::RestartIn(wait) => {
                watched.restart_at = Some(now + wait);
                println!("restarting {} in {} s", node.name, wait.as_secs());
            }
            Next::GiveUp(failures) => {
                watched.down = true;
                println!(
                    "{} failed {failures} times in a row within {} s of starting: not \
                     restarting it, the other nodes keep running; fix what its log says ({}) \
                     and start `local up` again",
                    node.name,
                    HEALTHY_RUN.as_secs(),
                    node.log_file.display()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Duration = Duration::from_millis(500);

    #[test]
    fn quick_failures_back_off_then_give_up() {
        let mut backoff = Backoff::default();
        let waits: Vec<Next> = (0..QUICK_FAILURES).map(|_| backoff.exited(QUICK)).collect();
        assert_eq!(
            waits,
            [
                Next::RestartIn(Duration::from_secs(1)),
                Next::RestartIn(Duration::from_secs(2)),
                Next::RestartIn(Duration::from_secs(4)),
                Next::GiveUp(QUICK_FAILURES),
            ]
        );
    }

    #[test]
    fn the_wait_doubles_to_a_ceiling_and_a_healthy_run_resets_it() {
        let mut backoff = Backoff::default();
        let mut last = Duration::ZERO;
        for _ in 0..10 {
            // The waits alone: without this the count of quick failures would stop it first.
            backoff.quick_failures = 0;
            match backoff.exited(QUICK) {
                Next::RestartIn(wait) => last = wait,
                Next::GiveUp(_) => unreachable!("the count was reset"),
            }
        }
        assert_eq!(last, MAX_BACKOFF);
        assert_eq!(
            backoff.exited(HEALTHY_RUN),
            Next::RestartIn(FIRST_BACKOFF),
            "a healthy run starts over"
        );
        assert_eq!(backoff.quick_failures, 0);
        assert_eq!(backoff.exited(QUICK), Next::RestartIn(FIRST_BACKOFF));
    }

    #[test]
    fn a_killed_node_that_ran_fine_is_restarted_at_once() {
        let mut backoff = Backoff::default();
        for _ in 0..10 {
            assert_eq!(
                backoff.exited(Duration::from_secs(120)),
                Next::RestartIn(FIRST_BACKOFF)
            );
        }
    }
}
