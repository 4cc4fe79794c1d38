//! Faults a test can switch on in a real node process, to see how the other nodes cope with
//! a participant that stays up but does not do its part. Off unless an environment variable
//! says otherwise; a node with a fault on says so at start, at warn. Never set in production.

use std::sync::OnceLock;

/// `1`: the node takes part in runs but sends none of its protocol messages (heartbeats,
/// statuses and job announcements still go out), so every run it is in waits on it until
/// the run's timeout.
pub const MUTE_RUNS_ENV: &str = "CHAINSIG_FAULT_MUTE_RUNS";

/// Whether this process mutes its protocol messages ([`MUTE_RUNS_ENV`]).
pub fn mute_runs() -> bool {
    static MUTE: OnceLock<bool> = OnceLock::new();
    *MUTE.get_or_init(|| std::env::var(MUTE_RUNS_ENV).is_ok_and(|v| v == "1"))
}

/// Logs the faults that are on.
pub fn announce() {
    if mute_runs() {
        tracing::warn!(
            "fault injection on ({MUTE_RUNS_ENV}=1): this node sends no protocol messages"
        );
    }
}
