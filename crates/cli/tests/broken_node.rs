//! One broken node is one broken node. Under `chainsig local up` (3 nodes, threshold 2, fast
//! blocks): a node killed with SIGKILL is reported and restarted, and the network signs
//! throughout; a node whose database was damaged while it was stopped exits at start, before
//! it joins the mesh, with one line naming the file; `local up` gives up on it after a few
//! tries, keeps running, and the other two nodes sign on.
//!
//! One network for both (a debug-build network takes a while to come up on two cores).

mod common;

use std::path::Path;
use std::time::Duration;

use chainsig_primitives::PublicKey;
use common::*;

/// Every byte past redb's first page (its header) changed: the pages of every table are
/// damaged, wherever in the file they are.
fn damage(database: &Path) {
    let mut bytes = std::fs::read(database).unwrap();
    assert!(bytes.len() > 4096, "{} is too small", database.display());
    for byte in &mut bytes[4096..] {
        *byte ^= 0x5a;
    }
    std::fs::write(database, bytes).unwrap();
}

/// What the log at `path` says after byte `from`.
fn log_since(path: &Path, from: u64) -> String {
    let bytes = std::fs::read(path).unwrap();
    String::from_utf8_lossy(&bytes[from as usize..]).into_owned()
}

#[test]
fn a_killed_node_comes_back_and_a_damaged_one_is_left_down() {
    let wasm = chainsig_devnet::signer_wasm::locate().expect("the contract wasm");
    let dir = scratch_dir();
    let home = dir.path.join("net");
    let mut up = LocalUp::start(&home, &wasm, &["--nodes", "3", "--threshold", "2"]);
    up.wait_for("ready", READY_TIMEOUT);
    let network = read_json(&home.join("network.json"));
    let root = PublicKey::parse(network["root_public_key"].as_str().unwrap()).unwrap();
    let accounts = vec![network["user_account"].as_str().unwrap().to_owned()];

    // A node killed while requests are in flight: `local up` says so and starts it again;
    // every request is answered.
    let (_, pid_file, http_url) = node_config(&network, 1);
    let pid = node_pid(&pid_file);
    let in_flight = start_requests(&home, &accounts, 4, "kill");
    signal(pid, libc::SIGKILL);
    let exited = up.wait_for("node1 exited", Duration::from_secs(30));
    assert!(exited.contains("SIGKILL"), "{exited}");
    up.wait_for("restarting node1 in 1 s", Duration::from_secs(5));
    up.wait_for("restarted node1", Duration::from_secs(30));
    expect_all_signed(in_flight, &root);
    assert_ne!(node_pid(&pid_file), pid, "a new process");
    let participant = network["nodes"][1]["participant_id"].as_u64().unwrap();
    wait_state(&http_url, "back with every peer", |s| {
        s["participant_id"].as_u64() == Some(participant) && peers_up(s).len() == 3
    });
    expect_all_signed(start_requests(&home, &accounts, 4, "back"), &root);
    assert!(
        up.process.child.try_wait().unwrap().is_none(),
        "local up stopped"
    );
    assert!(up.stop(Duration::from_secs(60)).success());

    // node2's database damaged while the network is stopped; then resumed.
    let node2 = home.join("nodes/node2");
    let database = node2.join("data/node.redb");
    damage(&database);
    let log = node2.join("node.log");
    let log_before = std::fs::metadata(&log).unwrap().len();
    let mut again = LocalUp::start(&home, &wasm, &[]);
    let exited = again.wait_for("node2 exited", Duration::from_secs(120));
    let damaged = format!("storage {} is damaged", database.display());
    assert!(exited.contains("exit status: 1"), "{exited}");
    assert!(exited.contains(&damaged), "{exited}");
    let gave_up = again.wait_for("node2 failed 4 times", Duration::from_secs(120));
    assert!(gave_up.contains("not restarting it"), "{gave_up}");
    // Each start ended at the storage check: one line naming the file and what to do, and
    // never the mesh.
    let said = log_since(&log, log_before);
    let errors: Vec<&str> = said.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 4, "{said}");
    for line in &errors {
        assert!(line.contains(&damaged), "{line}");
        assert!(line.contains("restore it from a backup"), "{line}");
    }
    assert!(!said.contains("mesh up"), "{said}");
    assert!(!said.contains("panicked"), "{said}");

    // The other two are a threshold: the network is ready without node2 and signs.
    let ready = again.wait_for("ready", READY_TIMEOUT);
    assert!(ready.contains("(node2 down)"), "{ready}");
    expect_all_signed(start_requests(&home, &accounts, 4, "without-node2"), &root);
    assert!(
        again.process.child.try_wait().unwrap().is_none(),
        "local up stopped"
    );
    assert!(again.stop(Duration::from_secs(60)).success());
}
