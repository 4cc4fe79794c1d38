//! Known answers for the destination addresses, computed independently by
//! `scripts/kat_addresses.py` (pure Python: its own secp256k1, Keccak-256, EIP-55 and bech32).

mod common;

use chainsig_chains::address::{
    btc_p2wpkh_address, evm_address_checksummed, parse_btc_address, parse_evm_address,
};
use chainsig_chains::{addresses, BtcNetwork, ChainsError, Signer};
use chainsig_primitives::k256::{ProjectivePoint, Scalar};
use chainsig_primitives::{derive_public_key, derive_tweak, PublicKey};

struct Case {
    account: &'static str,
    path: &'static str,
    compressed: &'static str,
    evm: &'static str,
    mainnet: &'static str,
    testnet: &'static str,
    regtest: &'static str,
}

const CASES: [Case; 3] = [
    Case {
        account: "alice.near",
        path: "ethereum-1",
        compressed: "02cc1b0ee5784c07ac9d024f10321084488af2c99b4d6637cdf0c5fac542190e49",
        evm: "0x9eDAb60f838f39773eF4b71343c05E9a33E4EbF4",
        mainnet: "bc1qfeqyf43n7srh0k5r4d42z6tnt2838kuhthkk7s",
        testnet: "tb1qfeqyf43n7srh0k5r4d42z6tnt2838kuhp3d99r",
        regtest: "bcrt1qfeqyf43n7srh0k5r4d42z6tnt2838kuhrc5gj2",
    },
    Case {
        account: "bob.testnet",
        path: "bitcoin-1",
        compressed: "03faabc662a1289dc9c7f0d9c6579eba7804748bad3d3eb00e5c19151470552bbb",
        evm: "0x401Ed764F8d4Ac90c28d7d9E950a457F6aa68500",
        mainnet: "bc1qmkj8wqaxjdmrsf3kkswxqmzn9t55wgfx6r8zx8",
        testnet: "tb1qmkj8wqaxjdmrsf3kkswxqmzn9t55wgfxs9u3a5",
        regtest: "bcrt1qmkj8wqaxjdmrsf3kkswxqmzn9t55wgfxjv9u2a",
    },
    Case {
        account: "dev-1.test.near",
        path: "",
        compressed: "02ee5c824ea1d93e6b74c6a8c9e5276e8516fbb2ceef6dc3df145a439492509aa5",
        evm: "0xF06b8E9679149D80467A2A972Ca2A5379bDC67F8",
        mainnet: "bc1qm7qykns67mdlaqfkxhau7dvrdtvnmg2s6vfmlj",
        testnet: "tb1qm7qykns67mdlaqfkxhau7dvrdtvnmg2ss2jgyp",
        regtest: "bcrt1qm7qykns67mdlaqfkxhau7dvrdtvnmg2sjrt9ng",
    },
];

#[test]
fn derived_addresses_match_the_independent_computation() {
    let root = common::root();
    for case in &CASES {
        let tweak = derive_tweak(case.account, case.path).unwrap();
        let derived =
            PublicKey::from_affine(derive_public_key(root.as_affine(), &tweak).unwrap()).unwrap();
        assert_eq!(hex::encode(derived.to_sec1_compressed()), case.compressed);
        assert_eq!(evm_address_checksummed(&derived), case.evm);
        assert_eq!(
            btc_p2wpkh_address(&derived, BtcNetwork::Mainnet).to_string(),
            case.mainnet
        );
        assert_eq!(
            btc_p2wpkh_address(&derived, BtcNetwork::Testnet).to_string(),
            case.testnet
        );
        assert_eq!(
            btc_p2wpkh_address(&derived, BtcNetwork::Regtest).to_string(),
            case.regtest
        );
        let all = addresses(&derived, BtcNetwork::Regtest);
        assert_eq!(all.evm_address, case.evm);
        assert_eq!(all.btc_p2wpkh, case.regtest);
        let json = serde_json::to_value(&all).unwrap();
        assert_eq!(json["evm_address"], case.evm);
        assert_eq!(json["btc_p2wpkh"], case.regtest);

        // The local signer derives the same key from the root secret.
        let signer = common::signer(case.account);
        assert_eq!(signer.public_key(case.path).unwrap(), derived);
        assert_eq!(signer.root_public_key(), root);
    }
}

#[test]
fn published_vectors() {
    // Secret key 1: the generator itself.
    let g = PublicKey::from_affine((ProjectivePoint::GENERATOR * Scalar::ONE).to_affine()).unwrap();
    assert_eq!(
        evm_address_checksummed(&g),
        "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
    );
    // BIP-173's P2WPKH example is the generator's compressed key.
    assert_eq!(
        btc_p2wpkh_address(&g, BtcNetwork::Mainnet).to_string(),
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    );
    assert_eq!(
        btc_p2wpkh_address(&g, BtcNetwork::Testnet).to_string(),
        "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"
    );
}

#[test]
fn networks_parse_by_name_and_refuse_others() {
    assert_eq!(
        "mainnet".parse::<BtcNetwork>().unwrap(),
        BtcNetwork::Mainnet
    );
    assert_eq!(
        "Testnet".parse::<BtcNetwork>().unwrap(),
        BtcNetwork::Testnet
    );
    assert_eq!(
        "regtest".parse::<BtcNetwork>().unwrap(),
        BtcNetwork::Regtest
    );
    assert_eq!(BtcNetwork::default(), BtcNetwork::Mainnet);
    for bad in ["", "main", "signet", "litecoin"] {
        let err = bad.parse::<BtcNetwork>().unwrap_err();
        assert!(err.is_input(), "{bad}");
        assert!(err.to_string().contains("unknown bitcoin network"), "{err}");
    }
}

#[test]
fn evm_address_parsing_checks_eip55_when_mixed_case() {
    let good = "0x9eDAb60f838f39773eF4b71343c05E9a33E4EbF4";
    let parsed = parse_evm_address(good).unwrap();
    assert_eq!(parsed.to_checksum(None), good);
    assert_eq!(parse_evm_address(&good.to_lowercase()).unwrap(), parsed);
    assert_eq!(
        parse_evm_address(&format!("0x{}", good[2..].to_uppercase())).unwrap(),
        parsed
    );
    // One flipped letter case breaks the checksum.
    let typo = "0x9EDAb60f838f39773eF4b71343c05E9a33E4EbF4";
    let err = parse_evm_address(typo).unwrap_err();
    assert!(
        err.is_input() && err.to_string().contains("checksum"),
        "{err}"
    );
    for bad in [
        "",
        "0x",
        "9eDAb60f838f39773eF4b71343c05E9a33E4EbF4",
        "0x1234",
        "0xzz",
    ] {
        let err: ChainsError = parse_evm_address(bad).unwrap_err();
        assert!(err.is_input(), "{bad}");
        assert!(!err.to_string().contains('\n'));
    }
}

#[test]
fn btc_address_parsing_checks_the_network() {
    let main = CASES[0].mainnet;
    assert!(parse_btc_address(main, BtcNetwork::Mainnet).is_ok());
    let err = parse_btc_address(main, BtcNetwork::Testnet).unwrap_err();
    assert!(
        err.is_input()
            && err
                .to_string()
                .contains("not an address on bitcoin testnet")
    );
    assert!(parse_btc_address(CASES[0].regtest, BtcNetwork::Mainnet).is_err());
    assert!(parse_btc_address(CASES[0].testnet, BtcNetwork::Regtest).is_err());
    // A broken checksum.
    let mut broken = main.to_string();
    broken.pop();
    broken.push('q');
    let err = parse_btc_address(&broken, BtcNetwork::Mainnet).unwrap_err();
    assert!(err.is_input() && !err.to_string().contains('\n'), "{err}");
    assert!(
        err.to_string().contains("not a valid bech32 address"),
        "{err}"
    );
    let err = parse_btc_address("hello", BtcNetwork::Mainnet).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("`hello` is not a bitcoin address"),
        "{err}"
    );
    // Upper-case bech32 is valid and prints lower-case.
    let upper = parse_btc_address(&main.to_uppercase(), BtcNetwork::Mainnet).unwrap();
    assert_eq!(upper.to_string(), main);
}
