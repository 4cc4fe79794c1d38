//! `--rpc-url` and `--esplora-url`: filling in, relaying, and the node's errors passed on as
//! one line, against mock servers on 127.0.0.1.

mod common;

use chainsig_chains::bitcoin::consensus::encode::deserialize_hex;
use chainsig_chains::bitcoin::Transaction;
use chainsig_chains::cli::{
    run_btc_send, run_eth_transfer, BtcSendArgs, EthTransferArgs, SignerArgs,
};
use chainsig_chains::eth::decode_signed;
use chainsig_chains::rpc::EthRpc;
use common::mock::{serve, Mock};
use serde_json::{json, Value};

const GWEI: u128 = 1_000_000_000;
const FROM: &str = "0x9eDAb60f838f39773eF4b71343c05E9a33E4EbF4";

fn local(account: &str) -> SignerArgs {
    SignerArgs {
        home: None,
        root_secret_key: Some(common::ROOT_SECRET.into()),
        account: Some(account.into()),
    }
}

/// A node on Sepolia where FROM has sent 5 transactions, base fee 10 gwei, tip 1 gwei.
/// `send_error` makes eth_sendRawTransaction fail as a node does.
fn node(send_error: Option<&'static str>) -> Mock {
    serve(move |method, _path, body| {
        let request: Value = serde_json::from_str(body).unwrap();
        assert_eq!(request["jsonrpc"], "2.0");
        let result = match request["method"].as_str().unwrap() {
            "eth_chainId" => json!("0xaa36a7"),
            "eth_getTransactionCount" => {
                assert_eq!(request["params"], json!([FROM, "pending"]));
                json!("0x5")
            }
            "eth_maxPriorityFeePerGas" => json!("0x3b9aca00"),
            "eth_getBlockByNumber" => json!({"number": "0x10", "baseFeePerGas": "0x2540be400"}),
            "eth_sendRawTransaction" => {
                if let Some(message) = send_error {
                    let error = json!({"jsonrpc":"2.0","id":request["id"],
                        "error":{"code":-32000,"message":message}});
                    return (200, error.to_string());
                }
                let raw = request["params"][0].as_str().unwrap();
                let decoded = decode_signed(&hex::decode(&raw[2..]).unwrap()).unwrap();
                json!(decoded.hash.to_string())
            }
            other => panic!("unexpected {method} {other}"),
        };
        (
            200,
            json!({"jsonrpc":"2.0","id":request["id"],"result":result}).to_string(),
        )
    })
}

fn eth_args(url: &str) -> EthTransferArgs {
    EthTransferArgs {
        signer: local("alice.near"),
        path: "ethereum-1".into(),
        to: "0x00000000000000000000000000000000000b0B0b".into(),
        value_wei: "1000".into(),
        chain_id: "11155111".into(),
        gas_limit: "21000".into(),
        rpc_url: Some(url.into()),
        json: true,
        ..Default::default()
    }
}

fn methods(mock: &Mock) -> Vec<String> {
    mock.requests()
        .iter()
        .map(|(_, _, body)| {
            let request: Value = serde_json::from_str(body).unwrap();
            request["method"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn rpc_fills_nonce_and_fees_and_broadcasts() {
    let mock = node(None);
    let out: Value = serde_json::from_str(&run_eth_transfer(eth_args(&mock.url)).unwrap()).unwrap();
    assert_eq!(out["from"], FROM);
    assert_eq!(out["broadcast"], out["hash"]);
    let raw = out["raw_transaction"].as_str().unwrap();
    let decoded = decode_signed(&hex::decode(&raw[2..]).unwrap()).unwrap();
    assert_eq!(decoded.tx.nonce, 5);
    assert_eq!(decoded.tx.max_priority_fee_per_gas, GWEI);
    assert_eq!(decoded.tx.max_fee_per_gas, 21 * GWEI, "2 × base fee + tip");
    assert_eq!(
        methods(&mock),
        [
            "eth_chainId",
            "eth_getTransactionCount",
            "eth_maxPriorityFeePerGas",
            "eth_getBlockByNumber",
            "eth_sendRawTransaction"
        ]
    );
    // What was sent is exactly what was printed.
    let sent: Value = serde_json::from_str(&mock.requests().last().unwrap().2).unwrap();
    assert_eq!(sent["params"][0], raw);
}

#[test]
fn given_values_are_kept_and_a_suggested_tip_stays_under_the_max_fee() {
    let mock = node(None);
    let args = EthTransferArgs {
        nonce: Some("9".into()),
        max_fee_per_gas: Some("500000000".into()),
        json: false,
        ..eth_args(&mock.url)
    };
    let text = run_eth_transfer(args).unwrap();
    assert!(text.contains("broadcast        0x"), "{text}");
    let raw = text
        .lines()
        .find_map(|l| l.strip_prefix("raw_transaction  "))
        .unwrap();
    let decoded = decode_signed(&hex::decode(&raw[2..]).unwrap()).unwrap();
    assert_eq!(decoded.tx.nonce, 9);
    assert_eq!(decoded.tx.max_fee_per_gas, 500_000_000);
    assert_eq!(decoded.tx.max_priority_fee_per_gas, 500_000_000);
    assert_eq!(
        methods(&mock),
        [
            "eth_chainId",
            "eth_maxPriorityFeePerGas",
            "eth_sendRawTransaction"
        ]
    );
}

#[test]
fn node_errors_are_one_line_failures() {
    let mock = node(Some("nonce too low:\nnext nonce 6, tx nonce 5"));
    let err = run_eth_transfer(eth_args(&mock.url)).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert_eq!(
        err.to_string(),
        "eth_sendRawTransaction: node error -32000: nonce too low: next nonce 6, tx nonce 5"
    );

    // Wrong chain: refused before anything is signed or sent.
    let mock = node(None);
    let args = EthTransferArgs {
        chain_id: "1".into(),
        ..eth_args(&mock.url)
    };
    let err = run_eth_transfer(args).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("on chain 11155111"), "{err}");
    assert_eq!(methods(&mock), ["eth_chainId"]);

    // Not JSON, an HTTP error, nobody listening, not a URL.
    let html = serve(|_, _, _| (502, "<html>\nbad gateway\n</html>".into()));
    let err = EthRpc::new(&html.url).unwrap().chain_id().unwrap_err();
    assert_eq!(
        err.to_string(),
        "eth_chainId: HTTP 502, not a JSON-RPC answer: <html> bad gateway </html>"
    );
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let err = EthRpc::new(&closed).unwrap().chain_id().unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(err.to_string().starts_with("eth_chainId: "), "{err}");
    assert!(!err.to_string().contains('\n'));
    let err = run_eth_transfer(eth_args("localhost:8545")).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err
        .to_string()
        .contains("--rpc-url: `localhost:8545` is not an http"));
}

const OWN: &str = "bcrt1qmkj8wqaxjdmrsf3kkswxqmzn9t55wgfxjv9u2a";
const OTHER: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";

fn esplora() -> Mock {
    serve(|method, path, body| match (method, path) {
        ("GET", p) if p == format!("/api/address/{OWN}/utxo") => {
            let utxo = |txid: char, vout: u32, value: u64, confirmed: bool| {
                json!({"txid": txid.to_string().repeat(64), "vout": vout, "value": value,
                       "status": {"confirmed": confirmed}})
            };
            let list = json!([
                utxo('a', 0, 20_000, true),
                utxo('b', 1, 90_000, false),
                utxo('c', 2, 50_000, true),
                utxo('d', 0, 40_000, true),
            ]);
            (200, list.to_string())
        }
        ("POST", "/api/tx") => {
            let tx: Transaction = deserialize_hex(body).unwrap();
            (200, tx.compute_txid().to_string())
        }
        _ => (404, "not found".into()),
    })
}

fn btc_args(url: &str) -> BtcSendArgs {
    BtcSendArgs {
        signer: local("bob.testnet"),
        path: "bitcoin-1".into(),
        outputs: vec![format!("{OTHER}:60000")],
        fee_rate: "2".into(),
        btc_network: "regtest".into(),
        esplora_url: Some(format!("{url}/api/")),
        json: true,
        ..Default::default()
    }
}

#[test]
fn esplora_picks_confirmed_utxos_largest_first_and_broadcasts() {
    let mock = esplora();
    let out: Value = serde_json::from_str(&run_btc_send(btc_args(&mock.url)).unwrap()).unwrap();
    assert_eq!(out["from"], OWN);
    assert_eq!(out["broadcast"], out["txid"]);
    let tx: Transaction = deserialize_hex(out["raw_transaction"].as_str().unwrap()).unwrap();
    // 50 000 + 40 000 confirmed cover 60 000 + fee; the unconfirmed 90 000 is not used.
    let spent: Vec<String> = tx
        .input
        .iter()
        .map(|i| i.previous_output.to_string())
        .collect();
    assert_eq!(
        spent,
        [
            format!("{}:2", "c".repeat(64)),
            format!("{}:0", "d".repeat(64))
        ]
    );
    // Change returns to the derived address.
    assert_eq!(tx.output.len(), 2);
    let own =
        chainsig_chains::address::parse_btc_address(OWN, chainsig_chains::BtcNetwork::Regtest)
            .unwrap();
    assert_eq!(tx.output[1].script_pubkey, own.script_pubkey());
    assert_eq!(
        tx.output[1].value.to_sat(),
        90_000 - 60_000 - out["fee_sats"].as_u64().unwrap()
    );
    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].2, out["raw_transaction"].as_str().unwrap());
}

#[test]
fn esplora_errors() {
    let mock = esplora();
    // More than the confirmed outputs hold.
    let args = BtcSendArgs {
        outputs: vec![format!("{OTHER}:110000")],
        ..btc_args(&mock.url)
    };
    let err = run_btc_send(args).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string()
            .contains("the 3 available outputs (110000 sats) do not cover"),
        "{err}"
    );
    // A server answering 400 to the broadcast.
    let rejecting = serve(|method, _, _| match method {
        "GET" => (200, "[]".into()),
        _ => (
            400,
            "sendrawtransaction RPC error: {\"code\":-26,\"message\":\"dust\"}".into(),
        ),
    });
    let args = BtcSendArgs {
        utxos: vec![format!("{}:0:100000", "e".repeat(64))],
        change: Some(OWN.into()),
        ..btc_args(&rejecting.url)
    };
    let err = run_btc_send(args).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(
        err.to_string()
            .starts_with("esplora POST /tx: HTTP 400: sendrawtransaction"),
        "{err}"
    );
    // No --utxo and no --esplora-url.
    let args = BtcSendArgs {
        esplora_url: None,
        ..btc_args(&mock.url)
    };
    assert!(run_btc_send(args)
        .unwrap_err()
        .to_string()
        .contains("--utxo required"));
}
