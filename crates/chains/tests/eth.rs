//! EIP-1559 transfers signed by the local signer: the raw transaction decodes, recovers to the
//! derived address, and executes in revm where that address was funded.

mod common;

use chainsig_chains::alloy_primitives::{address, Address, Bytes, TxKind, U256};
use chainsig_chains::eth::{decode_signed, sign_transfer, EthTransfer, UnsignedEthTx};
use chainsig_chains::{LocalSigner, Signer};
use chainsig_primitives::EcdsaSignature;
use revm::context::TxEnv;
use revm::context_interface::result::{ExecutionResult, Output};
use revm::context_interface::ContextTr;
use revm::database::InMemoryDB;
use revm::state::{AccountInfo, Bytecode};
use revm::{Context, DatabaseRef, ExecuteCommitEvm, MainBuilder, MainContext};

const SEPOLIA: u64 = 11_155_111;
const GWEI: u128 = 1_000_000_000;
const RECIPIENT: Address = address!("0x00000000000000000000000000000000000b0b0b");

fn transfer(nonce: u64, value: u128) -> EthTransfer {
    EthTransfer {
        chain_id: SEPOLIA,
        nonce,
        to: RECIPIENT,
        value: U256::from(value),
        data: Bytes::new(),
        gas_limit: 21_000,
        max_fee_per_gas: 30 * GWEI,
        max_priority_fee_per_gas: 2 * GWEI,
    }
}

/// An in-memory chain (revm's default rules, Osaka) where `funded` holds 1 ETH and has sent
/// `nonce` transactions.
fn chain(funded: Address, nonce: u64, extra: &[(Address, AccountInfo)]) -> InMemoryDB {
    let mut db = InMemoryDB::default();
    db.insert_account_info(
        funded,
        AccountInfo {
            balance: U256::from(10u128.pow(18)),
            nonce,
            ..Default::default()
        },
    );
    for (address, info) in extra {
        db.insert_account_info(*address, info.clone());
    }
    db
}

/// Executes raw transaction bytes: decoded and sender-recovered again from the bytes alone.
fn execute(db: InMemoryDB, raw: &[u8], basefee: u64) -> (ExecutionResult, InMemoryDB) {
    let decoded = decode_signed(raw).unwrap();
    let tx = &decoded.tx;
    let env = TxEnv::builder()
        .tx_type(Some(2))
        .caller(decoded.from)
        .nonce(tx.nonce)
        .chain_id(Some(tx.chain_id))
        .gas_limit(tx.gas_limit)
        .max_fee_per_gas(tx.max_fee_per_gas)
        .gas_priority_fee(Some(tx.max_priority_fee_per_gas))
        .kind(tx.to)
        .value(tx.value)
        .data(tx.input.clone())
        .build()
        .unwrap();
    let mut evm = Context::mainnet()
        .with_db(db)
        .modify_cfg_chained(|cfg| {
            cfg.chain_id = SEPOLIA;
            cfg.tx_chain_id_check = true;
        })
        .modify_block_chained(|block| block.basefee = basefee)
        .build_mainnet();
    let result = evm.transact_commit(env).unwrap();
    let db = evm.ctx.db().clone();
    (result, db)
}

#[test]
fn signed_transfer_decodes_recovers_and_executes() {
    let signer = common::signer("alice.near");
    let path = "ethereum-1";
    let from = chainsig_chains::address::evm_address(&signer.public_key(path).unwrap());
    // The known answer of scripts/kat_addresses.py for (alice.near, ethereum-1).
    assert_eq!(
        from.to_checksum(None),
        "0x9eDAb60f838f39773eF4b71343c05E9a33E4EbF4"
    );

    let value = 123_456_789_000_000_000u128;
    let signed = sign_transfer(&signer, path, &transfer(7, value)).unwrap();
    assert_eq!(signed.from, from);
    assert_eq!(
        signed.raw_transaction[0], 0x02,
        "EIP-2718 type byte of EIP-1559"
    );
    let json = signed.to_json();
    assert!(json.raw_transaction.starts_with("0x02"));
    assert_eq!(json.from, from.to_checksum(None));
    assert_eq!(json.hash.len(), 66);

    // Decode from bytes alone: every field as built, the sender recovered by alloy.
    let decoded = decode_signed(&signed.raw_transaction).unwrap();
    assert_eq!(decoded.from, from);
    assert_eq!(decoded.hash, signed.hash);
    assert_eq!(
        decoded.hash,
        chainsig_chains::alloy_primitives::keccak256(&signed.raw_transaction)
    );
    assert_eq!(decoded.tx.chain_id, SEPOLIA);
    assert_eq!(decoded.tx.nonce, 7);
    assert_eq!(decoded.tx.to, TxKind::Call(RECIPIENT));
    assert_eq!(decoded.tx.value, U256::from(value));
    assert_eq!(decoded.tx.gas_limit, 21_000);
    assert_eq!(decoded.tx.max_fee_per_gas, 30 * GWEI);
    assert_eq!(decoded.tx.max_priority_fee_per_gas, 2 * GWEI);

    // Execute: the value arrives, the nonce moves, the sender pays value + gas.
    let basefee = 10 * GWEI as u64;
    let (result, db) = execute(chain(from, 7, &[]), &signed.raw_transaction, basefee);
    assert!(result.is_success(), "{result:?}");
    assert_eq!(result.tx_gas_used(), 21_000);
    let recipient = db.basic_ref(RECIPIENT).unwrap().unwrap();
    assert_eq!(recipient.balance, U256::from(value));
    let sender = db.basic_ref(from).unwrap().unwrap();
    assert_eq!(sender.nonce, 8);
    let gas_cost = 21_000 * (basefee as u128 + 2 * GWEI);
    assert_eq!(
        sender.balance,
        U256::from(10u128.pow(18) - value - gas_cost)
    );
}

#[test]
fn the_evm_refuses_the_transaction_for_another_sender_state() {
    let signer = common::signer("alice.near");
    let from = chainsig_chains::address::evm_address(&signer.public_key("ethereum-1").unwrap());
    let signed = sign_transfer(&signer, "ethereum-1", &transfer(0, 1)).unwrap();
    // Nonce already used: the EVM refuses it, so the nonce really is the one signed.
    let decoded = decode_signed(&signed.raw_transaction).unwrap();
    let env = TxEnv::builder()
        .tx_type(Some(2))
        .caller(decoded.from)
        .nonce(decoded.tx.nonce)
        .chain_id(Some(decoded.tx.chain_id))
        .gas_limit(decoded.tx.gas_limit)
        .max_fee_per_gas(decoded.tx.max_fee_per_gas)
        .gas_priority_fee(Some(decoded.tx.max_priority_fee_per_gas))
        .kind(decoded.tx.to)
        .value(decoded.tx.value)
        .build()
        .unwrap();
    let mut evm = Context::mainnet()
        .with_db(chain(from, 1, &[]))
        .modify_cfg_chained(|cfg| cfg.chain_id = SEPOLIA)
        .build_mainnet();
    assert!(evm.transact_commit(env).is_err());
}

#[test]
fn call_data_reaches_a_contract() {
    // A contract that stores CALLDATALOAD(0) at slot 0: PUSH0 CALLDATALOAD PUSH0 SSTORE STOP.
    let contract = address!("0x00000000000000000000000000000000c0de0001");
    let code = Bytecode::new_raw(Bytes::from_static(&[0x5f, 0x35, 0x5f, 0x55, 0x00]));
    let info = AccountInfo::default().with_code(code);
    let signer = common::signer("bob.testnet");
    let from = chainsig_chains::address::evm_address(&signer.public_key("evm/contract").unwrap());
    let word = [0xabu8; 32];
    let transfer = EthTransfer {
        to: contract,
        data: Bytes::copy_from_slice(&word),
        gas_limit: 100_000,
        value: U256::ZERO,
        ..transfer(0, 0)
    };
    let signed = sign_transfer(&signer, "evm/contract", &transfer).unwrap();
    let (result, db) = execute(
        chain(from, 0, &[(contract, info)]),
        &signed.raw_transaction,
        GWEI as u64,
    );
    match &result {
        ExecutionResult::Success {
            output: Output::Call(_),
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    let stored = db.storage_ref(contract, U256::ZERO).unwrap();
    assert_eq!(stored, U256::from_be_bytes(word));
    assert_eq!(db.basic_ref(from).unwrap().unwrap().nonce, 1);
}

#[test]
fn a_signature_for_another_key_or_payload_is_refused() {
    let alice = common::signer("alice.near");
    let unsigned =
        UnsignedEthTx::new(&transfer(0, 1), alice.public_key("ethereum-1").unwrap()).unwrap();
    // Signed by another path's key.
    let wrong_key = alice
        .sign("ethereum-2", &unsigned.payload().unwrap())
        .unwrap();
    assert!(unsigned.clone().apply_signature(&wrong_key).is_err());
    // Right key, other transaction.
    let other =
        UnsignedEthTx::new(&transfer(1, 1), alice.public_key("ethereum-1").unwrap()).unwrap();
    let wrong_payload: EcdsaSignature =
        alice.sign("ethereum-1", &other.payload().unwrap()).unwrap();
    assert!(unsigned.clone().apply_signature(&wrong_payload).is_err());
    // The right one.
    let right = alice
        .sign("ethereum-1", &unsigned.payload().unwrap())
        .unwrap();
    assert!(unsigned.apply_signature(&right).is_ok());
}

#[test]
fn the_flow_works_for_either_recovery_id() {
    // Over a few nonces both parities of R appear; yParity must follow each.
    let signer = LocalSigner::from_hex(common::ROOT_SECRET, "carol.near").unwrap();
    let mut seen = [false; 2];
    for nonce in 0..16 {
        let public_key = signer.public_key("p").unwrap();
        let unsigned = UnsignedEthTx::new(&transfer(nonce, 1), public_key).unwrap();
        let signature = signer.sign("p", &unsigned.payload().unwrap()).unwrap();
        seen[signature.recovery_id() as usize] = true;
        let signed = unsigned.apply_signature(&signature).unwrap();
        let decoded = decode_signed(&signed.raw_transaction).unwrap();
        assert_eq!(decoded.signature.v(), signature.recovery_id() == 1);
        assert_eq!(decoded.from, signed.from);
    }
    assert_eq!(seen, [true, true]);
}

#[test]
fn invalid_fields_are_input_errors() {
    let pk = common::signer("alice.near").public_key("x").unwrap();
    let cases = [
        (
            EthTransfer {
                chain_id: 0,
                ..transfer(0, 1)
            },
            "--chain-id",
        ),
        (
            EthTransfer {
                nonce: u64::MAX,
                ..transfer(0, 1)
            },
            "--nonce",
        ),
        (
            EthTransfer {
                gas_limit: 20_999,
                ..transfer(0, 1)
            },
            "--gas-limit",
        ),
        (
            EthTransfer {
                max_priority_fee_per_gas: 31 * GWEI,
                ..transfer(0, 1)
            },
            "--max-priority-fee-per-gas",
        ),
        (
            EthTransfer {
                value: U256::MAX,
                ..transfer(0, 1)
            },
            "overflows",
        ),
    ];
    for (transfer, needle) in cases {
        let err = UnsignedEthTx::new(&transfer, pk).unwrap_err();
        assert!(err.is_input(), "{err}");
        assert!(err.to_string().contains(needle), "{err}");
        assert_eq!(err.exit_code(), 2);
    }
}

/// `scripts/kat_eth_tx.py` computes the same transaction with its own RLP, Keccak-256,
/// RFC 6979 and ECDSA: the signing hash, the signed bytes and the hash agree byte for byte.
#[test]
fn signed_transaction_matches_the_independent_computation() {
    let signer = common::signer("alice.near");
    let unsigned = UnsignedEthTx::new(
        &transfer(7, 123_456_789_000_000_000),
        signer.public_key("ethereum-1").unwrap(),
    )
    .unwrap();
    assert_eq!(
        unsigned.signing_hash().to_string(),
        "0x1a9cf97964e563fba75099f28659423ba7b8a8af15651e7c910198201e9fcde4"
    );
    let signature = signer
        .sign("ethereum-1", &unsigned.payload().unwrap())
        .unwrap();
    assert_eq!(signature.recovery_id(), 1);
    assert_eq!(
        hex::encode(signature.to_rs_bytes()),
        "d4b2cc0ed24ace474487a324c0e1636ab7e794e771ee16e056d589317332007f\
         40b14c3964682187f15975ba9a9086ff0a62fd77d000616c309a9da1d8d66277"
    );
    let signed = unsigned.apply_signature(&signature).unwrap();
    assert_eq!(
        signed.raw_transaction_hex(),
        "0x02f87683aa36a70784773594008506fc23ac008252089400000000000000000000000000000000000b0b0b\
         8801b69b4ba574920080c001a0d4b2cc0ed24ace474487a324c0e1636ab7e794e771ee16e056d589317332007f\
         a040b14c3964682187f15975ba9a9086ff0a62fd77d000616c309a9da1d8d66277"
    );
    assert_eq!(
        signed.hash.to_string(),
        "0x7682538bb66e1727f7a960985dd02bdc3a9cb84b872bec9a8813f1c6f8b85015"
    );
    assert_eq!(
        signed.from.to_checksum(None),
        "0x9eDAb60f838f39773eF4b71343c05E9a33E4EbF4"
    );
}

/// The network's seam: a RemoteSigner whose transport speaks the contract's JSON (the `sign`
/// arguments going out, the `SignatureResponse` coming back) signs the same transaction as
/// the local signer, and a response under another key is refused.
#[test]
fn remote_signer_over_the_contract_json() {
    use chainsig_chains::{ChainsError, RemoteSigner};
    use chainsig_primitives::{SignRequest, SignatureResponse};

    let local = common::signer("alice.near");
    let transport = |request: &SignRequest| -> Result<SignatureResponse, ChainsError> {
        // What a client sends to `sign`, parsed back as the contract parses it.
        let args = serde_json::json!({ "request": request }).to_string();
        let parsed: serde_json::Value = serde_json::from_str(&args).unwrap();
        let request: SignRequest = serde_json::from_value(parsed["request"].clone()).unwrap();
        let chainsig_primitives::Payload::Ecdsa(payload) = request.payload;
        let signature = local.sign(&request.path, &payload)?;
        // What `sign` resolves to, as JSON, parsed as a client parses it.
        let response = serde_json::to_string(&SignatureResponse::Secp256k1(signature)).unwrap();
        Ok(serde_json::from_str(&response).unwrap())
    };
    let remote = RemoteSigner::new(common::root(), "alice.near", transport);
    assert_eq!(
        remote.public_key("ethereum-1").unwrap(),
        local.public_key("ethereum-1").unwrap()
    );
    let via_network = sign_transfer(&remote, "ethereum-1", &transfer(7, 5)).unwrap();
    let via_local = sign_transfer(&local, "ethereum-1", &transfer(7, 5)).unwrap();
    assert_eq!(via_network, via_local);

    // A network answering with another path's key is caught before anything is assembled.
    let wrong = |request: &SignRequest| -> Result<SignatureResponse, ChainsError> {
        let chainsig_primitives::Payload::Ecdsa(payload) = request.payload;
        Ok(SignatureResponse::Secp256k1(local.sign("other", &payload)?))
    };
    let remote = RemoteSigner::new(common::root(), "alice.near", wrong);
    let err = sign_transfer(&remote, "ethereum-1", &transfer(7, 5)).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(
        err.to_string()
            .contains("does not verify under the derived key"),
        "{err}"
    );
}

/// The intrinsic gas the input check asks for is exactly what revm charges (EIP-7623 floor
/// included): a call to an account without code with that much gas succeeds and uses all
/// of it, one gas less is refused by both.
#[test]
fn intrinsic_gas_with_data_matches_the_evm() {
    use chainsig_chains::eth::intrinsic_gas;

    let data: Vec<u8> = [[0u8; 5].as_slice(), [0x61u8; 10].as_slice()].concat();
    let needed = intrinsic_gas(&data);
    assert_eq!(
        needed,
        21_000 + 10 * (5 + 4 * 10),
        "the floor dominates here"
    );
    assert_eq!(intrinsic_gas(&[]), 21_000);
    assert_eq!(intrinsic_gas(&[0xff; 1000]), 21_000 + 40 * 1000);

    let signer = common::signer("alice.near");
    let from = chainsig_chains::address::evm_address(&signer.public_key("gas").unwrap());
    let with_data = EthTransfer {
        data: Bytes::from(data.clone()),
        gas_limit: needed,
        ..transfer(0, 1)
    };
    let signed = sign_transfer(&signer, "gas", &with_data).unwrap();
    let (result, _) = execute(chain(from, 0, &[]), &signed.raw_transaction, GWEI as u64);
    assert!(result.is_success(), "{result:?}");
    assert_eq!(result.tx_gas_used(), needed);

    let short = EthTransfer {
        gas_limit: needed - 1,
        ..with_data
    };
    let err = sign_transfer(&signer, "gas", &short).unwrap_err();
    assert!(
        err.is_input() && err.to_string().contains("--gas-limit"),
        "{err}"
    );
    let env = TxEnv::builder()
        .tx_type(Some(2))
        .caller(from)
        .chain_id(Some(SEPOLIA))
        .gas_limit(needed - 1)
        .max_fee_per_gas(30 * GWEI)
        .gas_priority_fee(Some(2 * GWEI))
        .kind(TxKind::Call(RECIPIENT))
        .value(U256::from(1))
        .data(Bytes::from(data))
        .build()
        .unwrap();
    let mut evm = Context::mainnet()
        .with_db(chain(from, 0, &[]))
        .modify_cfg_chained(|cfg| cfg.chain_id = SEPOLIA)
        .build_mainnet();
    assert!(
        evm.transact_commit(env).is_err(),
        "revm accepts one gas less"
    );
}
