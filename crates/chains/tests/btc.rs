//! P2WPKH spends signed by the local signer: every input passes libbitcoinconsensus, and bad
//! input is a one-line error value.

mod common;

use chainsig_chains::address::{btc_p2wpkh_address, parse_btc_address};
use chainsig_chains::bitcoin::consensus::encode::deserialize_hex;
use chainsig_chains::bitcoin::{Amount, Transaction, Witness};
use chainsig_chains::btc::{
    sign_spend, verify_inputs, BtcSpend, FeeRate, Payment, UnsignedBtcTx, Utxo,
};
use chainsig_chains::{BtcNetwork, ChainsError, Signer};

const TXID_A: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const TXID_B: &str = "a3b8c9d0e1f2a3b8c9d0e1f2a3b8c9d0e1f2a3b8c9d0e1f2a3b8c9d0e1f20304";
/// BIP-173's P2WPKH and P2WSH examples, re-encoded for regtest by scripts/kat_addresses.py.
const OTHER: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
const OTHER_P2WSH: &str = "bcrt1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qzf4jry";

fn utxo(s: &str) -> Utxo {
    s.parse().unwrap()
}

fn pay(s: &str) -> Payment {
    Payment::parse(s, BtcNetwork::Regtest).unwrap()
}

fn spend(utxos: &[&str], outputs: &[&str], change: Option<&str>, rate: &str) -> BtcSpend {
    BtcSpend {
        network: BtcNetwork::Regtest,
        utxos: utxos.iter().map(|s| utxo(s)).collect(),
        outputs: outputs.iter().map(|s| pay(s)).collect(),
        change: change.map(|s| parse_btc_address(s, BtcNetwork::Regtest).unwrap()),
        fee_rate: rate.parse().unwrap(),
    }
}

#[test]
fn two_input_spend_with_change_verifies_in_libbitcoinconsensus() {
    let signer = common::signer("bob.testnet");
    let path = "bitcoin-1";
    let own = btc_p2wpkh_address(&signer.public_key(path).unwrap(), BtcNetwork::Regtest);
    // The known answer of scripts/kat_addresses.py for (bob.testnet, bitcoin-1).
    assert_eq!(
        own.to_string(),
        "bcrt1qmkj8wqaxjdmrsf3kkswxqmzn9t55wgfxjv9u2a"
    );

    let spend = spend(
        &[&format!("{TXID_A}:0:50000"), &format!("{TXID_B}:3:70000")],
        &[&format!("{OTHER}:60000"), &format!("{OTHER_P2WSH}:25000")],
        Some(&own.to_string()),
        "2.5",
    );
    let signed = sign_spend(&signer, path, &spend).unwrap();
    let tx = &signed.tx;
    assert_eq!(tx.input.len(), 2);
    assert_eq!(tx.output.len(), 3, "two payments and change");
    assert_eq!(tx.output[2].script_pubkey, own.script_pubkey());
    let total_out: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
    assert_eq!(120_000 - total_out, signed.fee.to_sat());
    // The fee pays at least the asked rate on the real size, and not much more.
    let vsize = tx.vsize() as u64;
    assert!(
        signed.fee.to_sat() * 1000 >= 2_500 * vsize,
        "{} for {vsize} vB",
        signed.fee
    );
    assert!(signed.fee.to_sat() <= (2_500 * (vsize + 2)).div_ceil(1000));
    for input in &tx.input {
        assert_eq!(input.witness.len(), 2);
        assert_eq!(
            *input.witness.nth(0).unwrap().last().unwrap(),
            0x01,
            "SIGHASH_ALL"
        );
        assert_eq!(
            input.witness.nth(1).unwrap(),
            signer.public_key(path).unwrap().to_sec1_compressed()
        );
    }

    // The printed hex decodes to the same transaction and verifies again, input by input.
    let json = signed.to_json();
    let reparsed: Transaction = deserialize_hex(&json.raw_transaction).unwrap();
    assert_eq!(&reparsed, tx);
    assert_eq!(json.txid, tx.compute_txid().to_string());
    verify_inputs(&reparsed, &signed.spent).unwrap();

    // Tampering is caught by the script interpreter: swapped witnesses, changed amounts.
    let mut swapped = reparsed.clone();
    swapped.input.swap(0, 1);
    assert!(verify_inputs(&swapped, &signed.spent).is_err());
    let mut wrong_amount = signed.spent.clone();
    wrong_amount[0].value = Amount::from_sat(50_001);
    assert!(verify_inputs(&reparsed, &wrong_amount).is_err());
    let mut stripped = reparsed.clone();
    stripped.input[1].witness = Witness::new();
    let err = verify_inputs(&stripped, &signed.spent).unwrap_err();
    assert!(err.to_string().contains("input 1"), "{err}");
    let mut redirected = reparsed;
    redirected.output[0].value = Amount::from_sat(59_999);
    assert!(verify_inputs(&redirected, &signed.spent).is_err());
}

#[test]
fn a_rest_below_dust_goes_to_the_fee_and_without_change_a_big_rest_is_refused() {
    let signer = common::signer("alice.near");
    let own = btc_p2wpkh_address(&signer.public_key("btc").unwrap(), BtcNetwork::Regtest);
    // 1 input, 1 P2WPKH output: 110 vB at most; at 1 sat/vB the fee is 110.
    let exact = spend(
        &[&format!("{TXID_A}:1:10000")],
        &[&format!("{OTHER}:9890")],
        None,
        "1",
    );
    let signed = sign_spend(&signer, "btc", &exact).unwrap();
    assert_eq!(signed.fee.to_sat(), 110);
    assert_eq!(signed.tx.output.len(), 1);

    // With a change address, but a rest too small for a change output: no change, all fee.
    let small_rest = spend(
        &[&format!("{TXID_A}:1:10000")],
        &[&format!("{OTHER}:9700")],
        Some(&own.to_string()),
        "1",
    );
    let signed = sign_spend(&signer, "btc", &small_rest).unwrap();
    assert_eq!(signed.tx.output.len(), 1);
    assert_eq!(signed.fee.to_sat(), 300);

    // Without a change address, a rest worth an output is refused rather than burnt.
    let big_rest = spend(
        &[&format!("{TXID_A}:1:10000")],
        &[&format!("{OTHER}:5000")],
        None,
        "1",
    );
    let err = UnsignedBtcTx::build(&big_rest, signer.public_key("btc").unwrap()).unwrap_err();
    assert!(
        err.is_input() && err.to_string().contains("--change"),
        "{err}"
    );
}

#[test]
fn each_input_gets_its_own_sighash() {
    let signer = common::signer("alice.near");
    let pk = signer.public_key("btc").unwrap();
    let unsigned = UnsignedBtcTx::build(
        &spend(
            &[&format!("{TXID_A}:0:5000"), &format!("{TXID_A}:1:5000")],
            &[&format!("{OTHER}:9800")],
            None,
            "1",
        ),
        pk,
    )
    .unwrap();
    let payloads = unsigned.payloads().unwrap();
    assert_eq!(payloads.len(), 2);
    assert_ne!(payloads[0], payloads[1]);
    // Signatures in the wrong order are refused before any witness is trusted.
    let mut signatures: Vec<_> = payloads
        .iter()
        .map(|p| signer.sign("btc", p).unwrap())
        .collect();
    signatures.swap(0, 1);
    assert!(unsigned.clone().apply_signatures(&signatures).is_err());
    signatures.swap(0, 1);
    assert!(unsigned.clone().apply_signatures(&signatures[..1]).is_err());
    assert!(unsigned.apply_signatures(&signatures).is_ok());
}

fn input_error(result: Result<impl std::fmt::Debug, ChainsError>, needle: &str) {
    let err = result.unwrap_err();
    assert!(err.is_input(), "not an input error: {err}");
    assert_eq!(err.exit_code(), 2);
    let message = err.to_string();
    assert!(!message.contains('\n'), "{message}");
    assert!(message.contains(needle), "`{message}` lacks `{needle}`");
}

#[test]
fn bad_input_is_a_one_line_error() {
    let net = BtcNetwork::Regtest;
    // Malformed UTXOs.
    input_error("nope".parse::<Utxo>(), "txid:vout:sats");
    input_error(format!("{TXID_A}:0").parse::<Utxo>(), "txid:vout:sats");
    input_error(format!("{}:0:1", &TXID_A[1..]).parse::<Utxo>(), "64 hex");
    input_error(format!("{}x:0:1", &TXID_A[1..]).parse::<Utxo>(), "hex");
    input_error(format!("{TXID_A}:4294967296:1").parse::<Utxo>(), "vout");
    input_error(format!("{TXID_A}:0:-5").parse::<Utxo>(), "whole number");
    input_error(format!("{TXID_A}:0:0").parse::<Utxo>(), "0 sats");
    input_error(
        format!("{TXID_A}:0:18446744073709551616").parse::<Utxo>(),
        "overflows",
    );
    input_error(
        format!("{TXID_A}:0:2100000000000001").parse::<Utxo>(),
        "21 million",
    );
    // Malformed or foreign addresses.
    input_error(
        Payment::parse("bcrt1qnotanaddress:1000", net),
        "not a valid bech32 address",
    );
    input_error(
        Payment::parse("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4:1000", net),
        "not an address on bitcoin regtest",
    );
    input_error(Payment::parse(OTHER, net), "address:sats");
    input_error(Payment::parse(&format!("{OTHER}:1.5"), net), "whole number");
    // Fee rates.
    input_error("0".parse::<FeeRate>(), "fee too low");
    input_error("0.999".parse::<FeeRate>(), "fee too low");
    input_error("1.0001".parse::<FeeRate>(), "sat/vB");
    input_error("-1".parse::<FeeRate>(), "sat/vB");
    input_error("".parse::<FeeRate>(), "sat/vB");
    input_error("fast".parse::<FeeRate>(), "sat/vB");
    input_error("99999999999999999999".parse::<FeeRate>(), "above");
    input_error("10001".parse::<FeeRate>(), "above");
    assert_eq!("1.5".parse::<FeeRate>().unwrap().to_string(), "1.5 sat/vB");

    let pk = common::signer("alice.near").public_key("btc").unwrap();
    let build = |s: BtcSpend| UnsignedBtcTx::build(&s, pk);
    // Outputs exceeding inputs.
    input_error(
        build(spend(
            &[&format!("{TXID_A}:0:1000")],
            &[&format!("{OTHER}:1001")],
            None,
            "1",
        )),
        "exceed inputs",
    );
    // Outputs plus fee exceeding inputs.
    input_error(
        build(spend(
            &[&format!("{TXID_A}:0:1000")],
            &[&format!("{OTHER}:900")],
            None,
            "1",
        )),
        "do not cover",
    );
    // Dust.
    input_error(
        build(spend(
            &[&format!("{TXID_A}:0:10000")],
            &[&format!("{OTHER}:293")],
            None,
            "1",
        )),
        "dust",
    );
    // The same UTXO twice.
    input_error(
        build(spend(
            &[&format!("{TXID_A}:0:10000"), &format!("{TXID_A}:0:10000")],
            &[&format!("{OTHER}:9000")],
            None,
            "1",
        )),
        "listed twice",
    );
    // Amounts whose sum overflows.
    let max = 2_100_000_000_000_000u64;
    input_error(
        build(spend(
            &[&format!("{TXID_A}:0:{max}"), &format!("{TXID_A}:1:{max}")],
            &[&format!("{OTHER}:9000")],
            None,
            "1",
        )),
        "overflow",
    );
    input_error(
        build(spend(
            &[&format!("{TXID_A}:0:{max}")],
            &[&format!("{OTHER}:{max}"), &format!("{OTHER}:{max}")],
            None,
            "1",
        )),
        "overflow",
    );
    // Nothing to spend or nowhere to send.
    input_error(
        build(spend(&[], &[&format!("{OTHER}:9000")], None, "1")),
        "--utxo",
    );
    input_error(
        build(spend(&[&format!("{TXID_A}:0:10000")], &[], None, "1")),
        "--to",
    );
}

/// `scripts/kat_btc_tx.py` computes the same spend with its own serialization, fee and change
/// arithmetic, BIP143 sighash, RFC 6979 and DER: fee, bytes and txid agree exactly.
#[test]
fn signed_spend_matches_the_independent_computation() {
    let signer = common::signer("bob.testnet");
    let own = btc_p2wpkh_address(
        &signer.public_key("bitcoin-1").unwrap(),
        BtcNetwork::Regtest,
    );
    let spend = spend(
        &[&format!("{TXID_A}:0:50000"), &format!("{TXID_B}:3:70000")],
        &[&format!("{OTHER}:60000"), &format!("{OTHER_P2WSH}:25000")],
        Some(&own.to_string()),
        "2.5",
    );
    let signed = sign_spend(&signer, "bitcoin-1", &spend).unwrap();
    assert_eq!(signed.fee.to_sat(), 630);
    assert_eq!(signed.tx.output[2].value.to_sat(), 34_370);
    assert_eq!(
        signed.raw_transaction_hex(),
        concat!(
            "0200000000010211111111111111111111111111111111111111111111111111111111111111110000",
            "000000fdffffff0403f2e1d0c9b8a3f2e1d0c9b8a3f2e1d0c9b8a3f2e1d0c9b8a3f2e1d0c9b8a30300",
            "000000fdffffff0360ea000000000000160014751e76e8199196d454941c45d1b3a323f1433bd6a861",
            "0000000000002200201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262",
            "4286000000000000160014dda47703a69376382636b41c606c532ae947212602473044022049a06eaa",
            "549bcbf1021aefe687850ba78f7d87fbdfa7cf23bbe6cb4e0dac9a31022013d23a31404d628a9decc2",
            "782d2dcbecf11e47e4579ddadd09d4b23e097ff7ce012103faabc662a1289dc9c7f0d9c6579eba7804",
            "748bad3d3eb00e5c19151470552bbb02483045022100c19d357d01c01b069fda241c9526746d605074",
            "8aa62fa6e743f41f22bbd99899022020332a2b01fa13b7621f40a31bfd6b18779866922b59408b13be",
            "f223e01ab91c012103faabc662a1289dc9c7f0d9c6579eba7804748bad3d3eb00e5c19151470552bbb",
            "00000000"
        )
    );
    assert_eq!(
        signed.txid().to_string(),
        "b9ec476c628c9c9875c1c1b0f703ac8fc5a5a78cc6cd335c0506cad988abd0df"
    );
}
