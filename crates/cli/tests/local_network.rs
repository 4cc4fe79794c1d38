//! The local network end to end: `chainsig local up` with 3 nodes (threshold 2) on fast
//! blocks, concurrent `chainsig sign` requests from two accounts, a node killed while
//! requests are in flight and restarted, a stranger refused by the mesh, a clean stop, and a
//! resume without a new key.
//!
//! The contract wasm: `CHAINSIG_CONTRACT_WASM`, the workspace's wasm32 release build, or a
//! fresh build (see `chainsig_devnet::signer_wasm`).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chainsig_node::mesh::{Endpoint, PeerDirectory, TlsIdentity};
use chainsig_primitives::{ParticipantId, PublicKey};
use common::*;

/// A TLS client with a key the contract never saw is refused by the node's mesh port.
fn stranger_is_refused(mesh_address: &str, tls_key_file: &Path) {
    let expected = chainsig_node::keys::load_tls_identity(tls_key_file)
        .unwrap()
        .public_key();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let stranger =
            Endpoint::new(TlsIdentity::generate().unwrap(), PeerDirectory::default()).unwrap();
        // In TLS 1.3 the refusal may show at connect or at the first read.
        if let Ok(mut connection) = stranger
            .connect(mesh_address, ParticipantId(0), expected)
            .await
        {
            let _ = connection.send_frame(b"let me in").await;
            let answer =
                tokio::time::timeout(Duration::from_secs(10), connection.recv_frame()).await;
            assert!(
                !matches!(answer, Ok(Ok(Some(_)))),
                "the mesh answered a stranger"
            );
        }
    });
}

/// Ethereum and Bitcoin transactions from the user's derived addresses, signed by the
/// network (`--home`). The commands themselves check the sender recovers to the derived
/// address and every Bitcoin input's script verifies; here their output is checked against
/// `derive --home`.
fn destination_chains_sign_through_the_network(home: &Path) {
    let home = home.to_str().unwrap();
    let user = read_json(&Path::new(home).join("network.json"))["user_account"]
        .as_str()
        .unwrap()
        .to_owned();
    let derive = |path: &str| {
        chainsig_json(&[
            "derive",
            "--home",
            home,
            "--account",
            &user,
            "--path",
            path,
            "--btc-network",
            "regtest",
            "--json",
        ])
    };
    let eth = chainsig_json(&[
        "eth",
        "transfer",
        "--home",
        home,
        "--path",
        "eth/1",
        "--to",
        "0x00000000000000000000000000000000000b0B0b",
        "--value-wei",
        "1000",
        "--nonce",
        "0",
        "--chain-id",
        "1",
        "--gas-limit",
        "21000",
        "--max-fee-per-gas",
        "30000000000",
        "--max-priority-fee-per-gas",
        "1000000000",
        "--json",
    ]);
    assert_eq!(eth["from"], derive("eth/1")["evm_address"], "{eth}");
    assert!(
        eth["raw_transaction"].as_str().unwrap().starts_with("0x02"),
        "{eth}"
    );

    let own = derive("btc/1")["btc_p2wpkh"].as_str().unwrap().to_owned();
    let txid = "1111111111111111111111111111111111111111111111111111111111111111";
    let btc = chainsig_json(&[
        "btc",
        "send",
        "--home",
        home,
        "--path",
        "btc/1",
        "--utxo",
        &format!("{txid}:0:40000"),
        "--utxo",
        &format!("{txid}:1:30000"),
        "--to",
        "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080:50000",
        "--change",
        &own,
        "--fee-rate",
        "3",
        "--btc-network",
        "regtest",
        "--json",
    ]);
    assert_eq!(btc["txid"].as_str().unwrap().len(), 64, "{btc}");
    assert!(
        !btc["raw_transaction"].as_str().unwrap().is_empty(),
        "{btc}"
    );
}

/// The README's run command on a fresh checkout: nothing built, no wasm named. `local up`
/// says it builds the contract, builds it (installing the wasm target if it is missing),
/// says how long it took, and reaches `ready`.
#[test]
fn the_readme_run_command_builds_its_own_contract() {
    let dir = tempfile::tempdir().unwrap();
    let scratch_target = dir.path().join("target");
    let home = dir.path().join("net");
    let mut up = LocalUp::start_as_readme(&home, &scratch_target, &["--nodes", "2"]);
    up.wait_for("building the contract wasm", Duration::from_secs(30));
    let built = up.wait_for("contract wasm built in", Duration::from_secs(900));
    assert!(
        built.contains(&*scratch_target.to_string_lossy()),
        "the wasm is built in the scratch target dir: {built}"
    );
    up.wait_for("ready", READY_TIMEOUT);
    assert!(up.stop(Duration::from_secs(30)).success());
}

#[test]
fn local_network_end_to_end() {
    let wasm = chainsig_devnet::signer_wasm::locate().expect("the contract wasm");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("net");
    // The test kills a node and restarts it itself (broken_node.rs has `local up` do it).
    let mut up = LocalUp::start(
        &home,
        &wasm,
        &[
            "--nodes",
            "3",
            "--threshold",
            "2",
            "--users",
            "2",
            "--no-restart",
        ],
    );
    up.wait_for("ready", READY_TIMEOUT);
    let network = read_json(&home.join("network.json"));
    let root = PublicKey::parse(network["root_public_key"].as_str().unwrap()).unwrap();
    let accounts: Vec<String> = network["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["account_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(accounts.len(), 2);

    // 20 concurrent requests from two accounts and four paths.
    expect_all_signed(start_requests(&home, &accounts, 20, "first"), &root);
    destination_chains_sign_through_the_network(&home);

    // A node killed while requests are in flight: every request is still answered.
    let (config, pid_file, http_url) = node_config(&network, 1);
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let in_flight = start_requests(&home, &accounts, 10, "kill");
    std::thread::sleep(Duration::from_millis(300));
    signal(pid, libc::SIGKILL);
    expect_all_signed(in_flight, &root);
    assert!(
        http_state(&http_url).is_none(),
        "the killed node still answers"
    );

    // Restarted, it rejoins with its key share and serves again.
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(config.parent().unwrap().join("node.log"))
        .unwrap();
    let restarted = Process {
        child: Command::new(BIN)
            .args(["node", "--config"])
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
        name: "restarted node",
    };
    let participant = network["nodes"][1]["participant_id"].as_u64().unwrap();
    let state = wait_state(&http_url, "back with every peer", |s| {
        s["participant_id"].as_u64() == Some(participant) && peers_up(s).len() == 3
    });
    assert_eq!(state["contract_state"]["Running"]["epoch"], 0, "no reshare");
    let (_, _, other_url) = node_config(&network, 0);
    wait_state(&other_url, "seeing the restarted node", |s| {
        peers_up(s).contains(&participant)
    });
    // Serving: requests succeed, and the restarted node leads some of them (a leader per
    // request by hash, so a few rounds make it all but certain).
    for round in 0..5 {
        expect_all_signed(
            start_requests(&home, &accounts, 6, &format!("after{round}")),
            &root,
        );
        if signatures_led(&http_url) > 0 {
            break;
        }
    }
    assert!(
        signatures_led(&http_url) > 0,
        "the restarted node never led"
    );

    // A peer with an unregistered TLS key is refused.
    let setup = read_json(&home.join("local.json"));
    let mesh = setup["nodes"][0]["mesh_address"]
        .as_str()
        .unwrap()
        .to_owned();
    let tls_key = home.join("nodes/node0/tls.key");
    stranger_is_refused(&mesh, &tls_key);

    // SIGTERM stops everything cleanly.
    drop(restarted);
    let node_pids: Vec<u32> = (0..3)
        .filter_map(|i| {
            std::fs::read_to_string(home.join(format!("nodes/node{i}/pid")))
                .ok()
                .and_then(|p| p.trim().parse().ok())
        })
        .collect();
    let status = up.stop(Duration::from_secs(60));
    assert!(status.success(), "local up exited with {status}");
    assert!(
        node_pids.iter().all(|&p| !alive(p)),
        "a node outlived local up"
    );
    assert!(
        !home.join("network.json").exists(),
        "a stopped network looks ready"
    );

    // Resumed on the same home: ready again with the same key, no new DKG.
    let mut again = LocalUp::start(&home, &wasm, &[]);
    again.wait_for("resuming", Duration::from_secs(60));
    again.wait_for("ready", READY_TIMEOUT);
    assert!(
        !again.seen.iter().any(|l| l.starts_with("DKG done")),
        "{:?}",
        again.seen
    );
    let resumed = read_json(&home.join("network.json"));
    assert_eq!(resumed["root_public_key"], network["root_public_key"]);
    expect_all_signed(start_requests(&home, &accounts, 4, "resumed"), &root);
    let status = again.stop(Duration::from_secs(60));
    assert!(status.success(), "local up exited with {status}");
}

#[test]
fn bad_flags_are_one_line_errors_with_exit_code_two() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("net");
    let home = home.to_str().unwrap();
    let payload = "11".repeat(32);
    let cases: &[&[&str]] = &[
        &[
            "local",
            "up",
            "--home",
            home,
            "--nodes",
            "3",
            "--threshold",
            "4",
        ],
        &["local", "up", "--home", home, "--threshold", "1"],
        &["local", "up", "--home", home, "--nodes", "1"],
        &["local", "up", "--home", home, "--block-time", "0"],
        &["sign", "--home", home, "--payload", "11", "--path", "x"],
        &["sign", "--home", home, "--payload", &payload, "--path", "x"],
        &["bench", "--home", home, "--requests", "0"],
        &[
            "derive",
            "--home",
            home,
            "--account",
            "a.near",
            "--path",
            "x",
        ],
    ];
    for args in cases {
        let output = Command::new(BIN).args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
    assert!(
        !dir.path().join("net").exists(),
        "a refused command made the home"
    );
}
