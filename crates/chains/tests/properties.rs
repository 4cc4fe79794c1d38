//! Properties over random inputs: building never panics, every refusal is a one-line input
//! error, and every transaction built is signed, verified and consistent. (Empty input or
//! output lists are covered by tests/btc.rs.)

mod common;

use chainsig_chains::address::{btc_p2wpkh_address, parse_btc_address};
use chainsig_chains::alloy_primitives::{Address, Bytes, TxKind, U256};
use chainsig_chains::btc::{sign_spend, BtcSpend, FeeRate, Payment, UnsignedBtcTx, Utxo};
use chainsig_chains::eth::{decode_signed, sign_transfer, EthTransfer};
use chainsig_chains::{BtcNetwork, LocalSigner, Signer};
use proptest::prelude::*;

const OTHER: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
const OTHER_P2WSH: &str = "bcrt1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qzf4jry";

fn signer() -> LocalSigner {
    common::signer("prop.near")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn btc_spends_verify_or_are_refused_as_input(
        inputs in prop::collection::vec(1u64..2_000_000, 1..5),
        outputs in prop::collection::vec(
            (prop_oneof![1 => 0u64..600, 9 => 600u64..1_500_000], any::<bool>()),
            1..4,
        ),
        with_change in prop::bool::weighted(0.75),
        millisat_per_vb in 0u64..60_000,
    ) {
        let signer = signer();
        let own = btc_p2wpkh_address(&signer.public_key("btc").unwrap(), BtcNetwork::Regtest);
        let utxos: Vec<Utxo> = inputs
            .iter()
            .enumerate()
            .map(|(vout, sats)| format!("{}:{vout}:{sats}", "7".repeat(64)).parse().unwrap())
            .collect();
        let outputs: Vec<Payment> = outputs
            .iter()
            .map(|(sats, wsh)| {
                let to = if *wsh { OTHER_P2WSH } else { OTHER };
                Payment::parse(&format!("{to}:{sats}"), BtcNetwork::Regtest).unwrap()
            })
            .collect();
        let rate = format!("{}.{:03}", millisat_per_vb / 1000, millisat_per_vb % 1000);
        let fee_rate = match rate.parse::<FeeRate>() {
            Ok(rate) => rate,
            Err(err) => {
                prop_assert!(err.is_input() && millisat_per_vb < 1000, "{err}");
                return Ok(());
            }
        };
        let spend = BtcSpend {
            network: BtcNetwork::Regtest,
            utxos,
            outputs,
            change: with_change.then(|| own.clone()),
            fee_rate,
        };
        match UnsignedBtcTx::build(&spend, signer.public_key("btc").unwrap()) {
            Err(err) => {
                prop_assert!(err.is_input(), "{err}");
                prop_assert!(!err.to_string().contains('\n'));
            }
            Ok(_) => {
                // sign_spend verifies every input with libbitcoinconsensus.
                let signed = sign_spend(&signer, "btc", &spend).unwrap();
                let total_in: u64 = inputs.iter().sum();
                let total_out: u64 = signed.tx.output.iter().map(|o| o.value.to_sat()).sum();
                prop_assert_eq!(total_in - total_out, signed.fee.to_sat());
                let vsize = signed.tx.vsize() as u64;
                prop_assert!(signed.fee.to_sat() * 1000 >= millisat_per_vb * vsize);
                for output in &signed.tx.output {
                    prop_assert!(output.value >= output.script_pubkey.minimal_non_dust());
                }
                prop_assert!(signed.tx.output.len() >= spend.outputs.len());
            }
        }
    }

    #[test]
    fn eth_transfers_round_trip(
        chain_id in 1u64..u64::MAX,
        nonce in 0u64..u64::MAX,
        to in any::<[u8; 20]>(),
        value in any::<u64>(),
        data in prop::collection::vec(any::<u8>(), 0..200),
        extra_gas in 0u64..30_000_000,
        tip in 0u128..1_000_000_000_000,
        extra in 0u128..1_000_000_000_000,
        path in "[a-z0-9/,-]{0,24}",
    ) {
        let signer = signer();
        let gas_limit = chainsig_chains::eth::intrinsic_gas(&data) + extra_gas;
        let transfer = EthTransfer {
            chain_id,
            nonce,
            to: Address::from(to),
            value: U256::from(value),
            data: Bytes::from(data),
            gas_limit,
            max_fee_per_gas: tip + extra,
            max_priority_fee_per_gas: tip,
        };
        let signed = sign_transfer(&signer, &path, &transfer).unwrap();
        let decoded = decode_signed(&signed.raw_transaction).unwrap();
        prop_assert_eq!(decoded.from, signed.from);
        prop_assert_eq!(
            decoded.from,
            chainsig_chains::address::evm_address(&signer.public_key(&path).unwrap())
        );
        prop_assert_eq!(decoded.tx.chain_id, chain_id);
        prop_assert_eq!(decoded.tx.nonce, nonce);
        prop_assert_eq!(decoded.tx.to, TxKind::Call(transfer.to));
        prop_assert_eq!(decoded.tx.value, transfer.value);
        prop_assert_eq!(&decoded.tx.input, &transfer.data);
        prop_assert_eq!(decoded.tx.gas_limit, gas_limit);
        prop_assert_eq!(decoded.tx.max_fee_per_gas, tip + extra);
        prop_assert_eq!(decoded.tx.max_priority_fee_per_gas, tip);
    }
}

#[test]
fn a_change_address_on_another_network_is_refused() {
    let signer = signer();
    let mainnet_change = parse_btc_address(
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
        BtcNetwork::Mainnet,
    )
    .unwrap();
    let spend = BtcSpend {
        network: BtcNetwork::Regtest,
        utxos: vec![format!("{}:0:100000", "7".repeat(64)).parse().unwrap()],
        outputs: vec![Payment::parse(&format!("{OTHER}:5000"), BtcNetwork::Regtest).unwrap()],
        change: Some(mainnet_change),
        fee_rate: "1".parse().unwrap(),
    };
    let err = UnsignedBtcTx::build(&spend, signer.public_key("btc").unwrap()).unwrap_err();
    assert!(err.is_input());
    assert!(err.to_string().contains("--change"), "{err}");
}
