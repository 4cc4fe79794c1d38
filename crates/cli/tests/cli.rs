//! The `chainsig` binary as a user runs it.

use std::process::{Command, Output};

use serde_json::Value;

const ROOT_NEAR: &str = "secp256k1:pQwJPcrsesSi9CVXHmfNRmgc21iVNo74oQFqKw6BmYFAeQpDq8xpN5sXp3WgvVZRQiZ3Ti1xxy4T79Uyfkhxihi";
const ROOT_SEC1: &str = "0328e30c53e8ce2eaf4b39c2a3828bed7fae705d514d2b7b1136dc6fd27b8b5961";

fn chainsig(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chainsig"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn derive_prints_the_known_answer() {
    for root in [ROOT_NEAR, ROOT_SEC1] {
        let output = chainsig(&[
            "derive",
            "--root-public-key",
            root,
            "--account",
            "alice.near",
            "--path",
            "ethereum-1",
        ]);
        assert!(output.status.success());
        let text = stdout(&output);
        assert!(
            text.contains("e4c9cc34fcc5f69fde83609d2f7739b541faa56c74cee872b220bdc3a85d1d4d"),
            "{text}"
        );
        assert!(
            text.contains("02cc1b0ee5784c07ac9d024f10321084488af2c99b4d6637cdf0c5fac542190e49"),
            "{text}"
        );
    }
}

#[test]
fn derive_json_has_tweak_and_public_key() {
    let output = chainsig(&[
        "derive",
        "--root-public-key",
        ROOT_NEAR,
        "--account",
        "bob.testnet",
        "--path",
        "",
        "--json",
    ]);
    assert!(output.status.success());
    let value: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        value["tweak"],
        "0779afe8e288c7ed2204b670c87a016a1a3d889f9796d5fec0eef7fd9d081a7c"
    );
    assert_eq!(
        value["public_key"],
        "secp256k1:ggKfUBY85jU2F7ohuy5PdKK5Agdxk42KMxqBE6CdVfMngwYJWKxrRvysaNyJJXTqcc5XM5vprYjz1QQhx4yhgo3"
    );
}

#[test]
fn bad_input_is_one_line_and_exit_code_two() {
    let long_path = "p".repeat(2000);
    let cases: &[&[&str]] = &[
        &[
            "derive",
            "--root-public-key",
            "secp256k1:xyz",
            "--account",
            "a.near",
        ],
        &[
            "derive",
            "--root-public-key",
            "ed25519:abc",
            "--account",
            "a.near",
        ],
        &["derive", "--root-public-key", "0400", "--account", "a.near"],
        &[
            "derive",
            "--root-public-key",
            ROOT_NEAR,
            "--account",
            "Not Valid",
        ],
        &[
            "derive",
            "--root-public-key",
            ROOT_NEAR,
            "--account",
            "a.near",
            "--path",
            &long_path,
        ],
        &["derive", "--account", "a.near"],
        &["demo", "--nodes", "1"],
        &["demo", "--threshold", "5"],
        &["demo", "--payload", "ffff"],
    ];
    for args in cases {
        let output = chainsig(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.starts_with("error:"), "{args:?}: {stderr}");
        if args[0] == "derive" && args.len() > 3 {
            assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        }
    }
}

#[test]
fn demo_signs_and_verifies() {
    let output = chainsig(&["demo", "--nodes", "4", "--threshold", "3"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = stdout(&output);
    assert!(text.contains("signature     verified"), "{text}");
    let response: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(response["scheme"], "Secp256k1");
}

const ROOT_SECRET: &str = "e8a495a9fa68c4ad3aaf5b70a3b0177caec029ac4b03e96471a549d7acb744c1";

#[test]
fn derive_prints_destination_addresses() {
    let output = chainsig(&[
        "derive",
        "--root-public-key",
        ROOT_SEC1,
        "--account",
        "alice.near",
        "--path",
        "ethereum-1",
        "--btc-network",
        "regtest",
        "--json",
    ]);
    assert!(output.status.success());
    let value: Value = serde_json::from_str(&stdout(&output)).unwrap();
    // Independently computed by crates/chains/scripts/kat_addresses.py.
    assert_eq!(
        value["evm_address"],
        "0x9eDAb60f838f39773eF4b71343c05E9a33E4EbF4"
    );
    assert_eq!(
        value["btc_p2wpkh"],
        "bcrt1qfeqyf43n7srh0k5r4d42z6tnt2838kuhrc5gj2"
    );
    let text = stdout(&chainsig(&[
        "derive",
        "--root-public-key",
        ROOT_SEC1,
        "--account",
        "alice.near",
        "--path",
        "ethereum-1",
    ]));
    assert!(
        text.contains("btc_p2wpkh  bc1qfeqyf43n7srh0k5r4d42z6tnt2838kuhthkk7s"),
        "{text}"
    );
}

#[test]
fn eth_and_btc_sign_with_a_local_test_key() {
    let eth = chainsig(&[
        "eth",
        "transfer",
        "--root-secret-key",
        ROOT_SECRET,
        "--account",
        "alice.near",
        "--path",
        "ethereum-1",
        "--to",
        "0x000000000000000000000000000000000000dEaD",
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
    assert!(
        eth.status.success(),
        "{}",
        String::from_utf8_lossy(&eth.stderr)
    );
    let value: Value = serde_json::from_str(&stdout(&eth)).unwrap();
    assert_eq!(value["from"], "0x9eDAb60f838f39773eF4b71343c05E9a33E4EbF4");
    assert!(value["raw_transaction"]
        .as_str()
        .unwrap()
        .starts_with("0x02"));

    let address = "bcrt1qfeqyf43n7srh0k5r4d42z6tnt2838kuhrc5gj2";
    let utxo = format!("{}:0:100000", "11".repeat(32));
    let to = format!("{address}:50000");
    let btc = chainsig(&[
        "btc",
        "send",
        "--root-secret-key",
        ROOT_SECRET,
        "--account",
        "alice.near",
        "--path",
        "btc",
        "--utxo",
        &utxo,
        "--to",
        &to,
        "--change",
        address,
        "--fee-rate",
        "2",
        "--btc-network",
        "regtest",
        "--json",
    ]);
    assert!(
        btc.status.success(),
        "{}",
        String::from_utf8_lossy(&btc.stderr)
    );
    let value: Value = serde_json::from_str(&stdout(&btc)).unwrap();
    assert_eq!(value["txid"].as_str().unwrap().len(), 64);

    let bad = chainsig(&[
        "btc",
        "send",
        "--root-secret-key",
        ROOT_SECRET,
        "--account",
        "alice.near",
        "--path",
        "btc",
        "--utxo",
        &utxo,
        "--to",
        "notanaddress:5",
        "--fee-rate",
        "2",
        "--btc-network",
        "regtest",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(bad.stderr)
            .unwrap()
            .trim_end()
            .lines()
            .count(),
        1
    );
}

#[test]
fn devnet_refuses_a_home_that_is_not_one() {
    let dir = std::env::temp_dir().join(format!("chainsig-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("something-else.txt"), "not a devnet").unwrap();
    let home = dir.to_str().unwrap();
    let output = chainsig(&["devnet", "--home", home, "--rpc-addr", "127.0.0.1:0"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("is not a devnet home"), "{stderr}");
    // Nothing was written into it.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_closed_output_pipe_is_not_a_panic() {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_chainsig"))
        .args(["demo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before anything is printed
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_node_with_a_bad_config_says_which_field_and_exits_with_two() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let output = chainsig(&["node", "--config", missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let error = String::from_utf8(output.stderr).unwrap();
    assert!(error.contains("cannot read config file"), "{error}");
    let output = chainsig(&[
        "vote",
        "--config",
        missing.to_str().unwrap(),
        "join",
        "n3.test.near",
    ]);
    assert_eq!(output.status.code(), Some(2));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        r#"
[node]
account_id = "n0.test.near"
account_key_file = "k.json"
data_dir = "data"
[near]
rpc_url = "ftp://example"
contract_id = "signer.test.near"
[mesh]
listen = "127.0.0.1:0"
public_address = "127.0.0.1:1"
tls_key_file = "tls.key"
[http]
listen = "127.0.0.1:0"
[storage]
key_env = "X"
"#,
    )
    .unwrap();
    let output = chainsig(&["node", "--config", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let error = String::from_utf8(output.stderr).unwrap();
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(error.contains("near.rpc_url"), "{error}");
}
