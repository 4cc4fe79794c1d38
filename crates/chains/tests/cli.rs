//! The `chainsig eth` / `chainsig btc` plumbing, driven through clap exactly as the binary will
//! mount it.

mod common;

use chainsig_chains::bitcoin::consensus::encode::deserialize_hex;
use chainsig_chains::bitcoin::Transaction;
use chainsig_chains::cli::{run_btc, run_eth, BtcCommand, EthCommand};
use chainsig_chains::eth::decode_signed;
use chainsig_chains::ChainsError;
use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(subcommand)]
    Eth(EthCommand),
    #[command(subcommand)]
    Btc(BtcCommand),
}

fn run(args: &[&str]) -> Result<String, ChainsError> {
    let cli = Cli::try_parse_from(std::iter::once("chainsig").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("clap refused {args:?}: {e}"));
    match cli.command {
        Command::Eth(command) => run_eth(command),
        Command::Btc(command) => run_btc(command),
    }
}

fn local<'a>(account: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--root-secret-key",
        common::ROOT_SECRET,
        "--account",
        account,
    ];
    args.extend_from_slice(rest);
    args
}

const ETH: [&str; 16] = [
    "--path",
    "ethereum-1",
    "--to",
    "0x00000000000000000000000000000000000b0B0b",
    "--value-wei",
    "1000000000000000000",
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
];

fn eth(extra: &[&str]) -> Result<String, ChainsError> {
    let mut args = vec!["eth", "transfer"];
    args.extend(local("alice.near", &ETH));
    args.extend_from_slice(extra);
    run(&args)
}

/// `ETH` with the value after `flag` replaced.
fn eth_with(flag: &str, value: &str) -> Result<String, ChainsError> {
    let mut args = vec!["eth", "transfer"];
    let mut eth = ETH;
    let at = eth.iter().position(|a| *a == flag).unwrap();
    eth[at + 1] = value;
    args.extend(local("alice.near", &eth));
    run(&args)
}

#[test]
fn eth_transfer_prints_json_and_text() {
    let json: serde_json::Value = serde_json::from_str(&eth(&["--json"]).unwrap()).unwrap();
    let from = "0x9eDAb60f838f39773eF4b71343c05E9a33E4EbF4";
    assert_eq!(json["from"], from);
    let raw = json["raw_transaction"].as_str().unwrap();
    let decoded = decode_signed(&hex::decode(&raw[2..]).unwrap()).unwrap();
    assert_eq!(decoded.from.to_checksum(None), from);
    assert_eq!(json["hash"], decoded.hash.to_string());

    let text = eth(&[]).unwrap();
    assert!(text.contains(&format!("from             {from}")), "{text}");
    assert!(text.contains(raw), "{text}");
    // Deterministic (RFC 6979 in the local signer).
    assert_eq!(eth(&["--json"]).unwrap(), eth(&["--json"]).unwrap());
}

fn input_error(result: Result<String, ChainsError>, needle: &str) {
    let err = result.unwrap_err();
    let message = err.to_string();
    assert_eq!(err.exit_code(), 2, "{message}");
    assert!(!message.contains('\n'), "{message}");
    assert!(message.contains(needle), "`{message}` lacks `{needle}`");
}

#[test]
fn eth_transfer_bad_input() {
    input_error(eth_with("--to", "0xnothex"), "--to");
    input_error(
        eth_with("--to", "0x00000000000000000000000000000000000B0B0b"),
        "checksum",
    );
    input_error(
        eth_with(
            "--value-wei",
            "115792089237316195423570985008687907853269984665640564039457584007913129639936",
        ),
        "overflows 256 bits",
    );
    input_error(eth_with("--value-wei", "1e18"), "--value-wei");
    input_error(eth_with("--nonce", "-1"), "--nonce");
    input_error(eth_with("--chain-id", "0"), "--chain-id");
    input_error(
        eth_with("--gas-limit", "18446744073709551616"),
        "overflows 64 bits",
    );
    input_error(
        eth_with("--max-priority-fee-per-gas", "30000000001"),
        "exceeds",
    );
    input_error(eth(&["--data", "abcd"]), "--data");
    input_error(eth(&["--data", "0xabc"]), "--data");
    // Missing nonce and fees without --rpc-url.
    let mut missing = vec!["eth", "transfer"];
    missing.extend(local(
        "alice.near",
        &[
            "--to",
            ETH[3],
            "--value-wei",
            "1",
            "--chain-id",
            "1",
            "--gas-limit",
            "21000",
        ],
    ));
    input_error(
        run(&missing),
        "--nonce, --max-fee-per-gas, --max-priority-fee-per-gas required",
    );
    // Signer flags.
    input_error(
        run(&[
            "eth",
            "transfer",
            "--to",
            ETH[3],
            "--value-wei",
            "1",
            "--chain-id",
            "1",
            "--gas-limit",
            "21000",
            "--nonce",
            "0",
            "--max-fee-per-gas",
            "1",
            "--max-priority-fee-per-gas",
            "1",
        ]),
        "no signer",
    );
    input_error(
        run(&[
            "eth",
            "transfer",
            "--to",
            ETH[3],
            "--value-wei",
            "1",
            "--chain-id",
            "1",
            "--gas-limit",
            "21000",
            "--nonce",
            "0",
            "--max-fee-per-gas",
            "1",
            "--max-priority-fee-per-gas",
            "1",
            "--root-secret-key",
            "00",
            "--account",
            "a.near",
        ]),
        "--root-secret-key",
    );
    let mut bad_account = vec!["eth", "transfer"];
    bad_account.extend(local("Alice.near", &ETH));
    input_error(run(&bad_account), "--account");
}

#[test]
fn home_is_not_available_yet() {
    let err = run(&[
        "eth",
        "transfer",
        "--home",
        "/tmp/x",
        "--to",
        ETH[3],
        "--value-wei",
        "1",
        "--chain-id",
        "1",
        "--gas-limit",
        "21000",
        "--nonce",
        "0",
        "--max-fee-per-gas",
        "1",
        "--max-priority-fee-per-gas",
        "1",
    ])
    .unwrap_err();
    assert!(
        err.to_string().contains("does not sign through a network"),
        "{err}"
    );
}

const OWN: &str = "bcrt1qmkj8wqaxjdmrsf3kkswxqmzn9t55wgfxjv9u2a";
const OTHER: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
const TXID: &str = "1111111111111111111111111111111111111111111111111111111111111111";

/// `btc send` with the value after each flag in `overrides` replaced (or the flag added).
fn btc(overrides: &[&str]) -> Result<String, ChainsError> {
    let utxo0 = format!("{TXID}:0:40000");
    let utxo1 = format!("{TXID}:1:30000");
    let to = format!("{OTHER}:50000");
    let mut rest = vec![
        "--path",
        "bitcoin-1",
        "--utxo",
        &utxo0,
        "--utxo",
        &utxo1,
        "--to",
        &to,
        "--change",
        OWN,
        "--fee-rate",
        "3",
        "--btc-network",
        "regtest",
    ];
    let mut flags = Vec::new();
    for pair in overrides.chunks(2) {
        match (rest.iter().position(|a| *a == pair[0]), pair.get(1)) {
            (Some(at), Some(value)) => rest[at + 1] = value,
            _ => flags.extend_from_slice(pair),
        }
    }
    rest.extend(flags);
    let mut args = vec!["btc", "send"];
    args.extend(local("bob.testnet", &rest));
    run(&args)
}

#[test]
fn btc_send_prints_json_and_text() {
    let json: serde_json::Value = serde_json::from_str(&btc(&["--json"]).unwrap()).unwrap();
    assert_eq!(json["from"], OWN);
    let tx: Transaction = deserialize_hex(json["raw_transaction"].as_str().unwrap()).unwrap();
    assert_eq!(json["txid"], tx.compute_txid().to_string());
    assert_eq!(tx.input.len(), 2);
    assert_eq!(tx.output.len(), 2);
    assert_eq!(json["vsize"], tx.vsize() as u64);
    let text = btc(&[]).unwrap();
    assert!(text.contains(&format!("from             {OWN}")), "{text}");
    assert!(text.contains(json["txid"].as_str().unwrap()), "{text}");
}

#[test]
fn btc_send_bad_input() {
    input_error(
        btc(&["--btc-network", "litecoin"]),
        "--btc-network: unknown bitcoin network",
    );
    input_error(
        btc(&["--btc-network", "mainnet"]),
        "not an address on bitcoin mainnet",
    );
    input_error(btc(&["--fee-rate", "0"]), "fee too low");
    input_error(btc(&["--to", &format!("{OTHER}:70001")]), "exceed inputs");
    input_error(btc(&["--to", &format!("{OTHER}:100")]), "dust");
    input_error(btc(&["--change", "bcrt1qbroken"]), "--change");
    input_error(btc(&["--utxo", "xyz"]), "--utxo");
    input_error(
        btc(&["--esplora-url", "ftp://example"]),
        "--esplora-url: `ftp://example` is not an http:// or https:// URL",
    );
}

#[test]
fn derive_gains_the_addresses() {
    use chainsig_chains::cli::DeriveAddressArgs;
    use chainsig_chains::Signer;

    #[derive(Parser)]
    struct Derive {
        #[command(flatten)]
        btc: DeriveAddressArgs,
    }
    let key = common::signer("alice.near")
        .public_key("ethereum-1")
        .unwrap();
    let parse = |args: &[&str]| {
        Derive::try_parse_from(std::iter::once("derive").chain(args.iter().copied()))
            .unwrap()
            .btc
    };
    let mainnet = parse(&[]).addresses(&key).unwrap();
    assert_eq!(
        mainnet.evm_address,
        "0x9eDAb60f838f39773eF4b71343c05E9a33E4EbF4"
    );
    assert_eq!(
        mainnet.btc_p2wpkh,
        "bc1qfeqyf43n7srh0k5r4d42z6tnt2838kuhthkk7s"
    );
    assert_eq!(
        mainnet.text_lines(),
        "evm_address 0x9eDAb60f838f39773eF4b71343c05E9a33E4EbF4\n\
         btc_p2wpkh  bc1qfeqyf43n7srh0k5r4d42z6tnt2838kuhthkk7s"
    );
    let regtest = parse(&["--btc-network", "regtest"])
        .addresses(&key)
        .unwrap();
    assert_eq!(
        regtest.btc_p2wpkh,
        "bcrt1qfeqyf43n7srh0k5r4d42z6tnt2838kuhrc5gj2"
    );
    assert_eq!(DeriveAddressArgs::default(), parse(&[]));
    let err = parse(&["--btc-network", "dogecoin"])
        .addresses(&key)
        .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err
        .to_string()
        .starts_with("--btc-network: unknown bitcoin network"));
}

#[test]
fn root_secret_key_needs_account() {
    let mut args = vec!["eth", "transfer", "--root-secret-key", common::ROOT_SECRET];
    args.extend_from_slice(&ETH);
    input_error(run(&args), "--root-secret-key needs --account");
}

#[test]
fn clap_definitions_are_consistent() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
    let help = Cli::command()
        .find_subcommand_mut("eth")
        .unwrap()
        .find_subcommand_mut("transfer")
        .unwrap()
        .render_long_help()
        .to_string();
    for flag in [
        "--home",
        "--path",
        "--to",
        "--value-wei",
        "--nonce",
        "--chain-id",
        "--gas-limit",
        "--max-fee-per-gas",
        "--max-priority-fee-per-gas",
        "--data",
        "--rpc-url",
        "--json",
        "LOCAL TESTING ONLY",
    ] {
        assert!(help.contains(flag), "{flag} missing from\n{help}");
    }
    let help = Cli::command()
        .find_subcommand_mut("btc")
        .unwrap()
        .find_subcommand_mut("send")
        .unwrap()
        .render_long_help()
        .to_string();
    for flag in [
        "--home",
        "--path",
        "--utxo",
        "--to",
        "--change",
        "--fee-rate",
        "--btc-network",
        "--esplora-url",
        "--json",
    ] {
        assert!(help.contains(flag), "{flag} missing from\n{help}");
    }
}

#[test]
fn home_is_served_by_the_binarys_home_signer() {
    use chainsig_chains::cli::run_eth_with;
    use chainsig_chains::{RemoteSigner, Signer};
    use chainsig_primitives::{SignRequest, SignatureResponse};
    use std::path::Path;

    // Stands in for "the local network in DIR": a RemoteSigner over the local signer.
    let home_signer =
        |home: &Path, account: Option<&str>| -> Result<Box<dyn Signer>, ChainsError> {
            assert_eq!(home, Path::new("/tmp/chainsig-home"));
            let account = account.unwrap_or("alice.near").to_string();
            let local = common::signer(&account);
            let transport = move |request: &SignRequest| -> Result<SignatureResponse, ChainsError> {
                let chainsig_primitives::Payload::Ecdsa(payload) = request.payload;
                Ok(SignatureResponse::Secp256k1(
                    local.sign(&request.path, &payload)?,
                ))
            };
            Ok(Box::new(RemoteSigner::new(
                common::root(),
                account,
                transport,
            )))
        };
    let mut args = vec![
        "chainsig",
        "eth",
        "transfer",
        "--home",
        "/tmp/chainsig-home",
        "--json",
    ];
    args.extend_from_slice(&ETH);
    let Command::Eth(command) = Cli::try_parse_from(&args).unwrap().command else {
        unreachable!()
    };
    let via_home: serde_json::Value =
        serde_json::from_str(&run_eth_with(command, &home_signer).unwrap()).unwrap();
    let local: serde_json::Value = serde_json::from_str(&eth(&["--json"]).unwrap()).unwrap();
    assert_eq!(via_home, local);
}
