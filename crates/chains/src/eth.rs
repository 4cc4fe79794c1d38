//! Ethereum: EIP-1559 transactions from a derived address, signed through a [`Signer`].
//!
//! The flow is sans-IO: [`UnsignedEthTx::new`] builds the transaction, [`UnsignedEthTx::payload`]
//! is what the network signs, [`UnsignedEthTx::apply_signature`] assembles the signed
//! transaction and checks, by recovering the sender with alloy's own code, that it comes from
//! the derived address. [`sign_transfer`] runs the whole flow with a [`Signer`].

use alloy_consensus::{SignableTransaction, Signed, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_eips::Typed2718;
use alloy_primitives::{Address, Bytes, Signature, TxKind, B256, U256};
use chainsig_primitives::{EcdsaPayload, EcdsaSignature, PublicKey};
use serde::Serialize;

use crate::address::evm_address;
use crate::error::{ChainsError, Result};
use crate::signer::Signer;

/// The gas every transaction pays before it does anything (a plain value transfer).
pub const INTRINSIC_GAS: u64 = 21_000;

/// The gas a call with `data` (and no access list) pays before any code runs: the larger of
/// 21000 + 4 per zero byte + 16 per other byte, and the EIP-7623 floor (Prague on)
/// 21000 + 10 per token, a zero byte being one token and any other byte four.
pub fn intrinsic_gas(data: &[u8]) -> u64 {
    let zeros = data.iter().filter(|b| **b == 0).count() as u64;
    let others = data.len() as u64 - zeros;
    let standard = INTRINSIC_GAS + 4 * zeros + 16 * others;
    let floor = INTRINSIC_GAS + 10 * (zeros + 4 * others);
    standard.max(floor)
}

/// The fields of an EIP-1559 transaction the user chooses. The access list is always empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthTransfer {
    pub chain_id: u64,
    pub nonce: u64,
    pub to: Address,
    pub value: U256,
    pub data: Bytes,
    pub gas_limit: u64,
    pub max_fee_per_gas: u128,
    pub max_priority_fee_per_gas: u128,
}

impl EthTransfer {
    /// Refuses what no node would accept: chain id 0, a nonce of 2^64−1 (EIP-2681), a gas
    /// limit below the intrinsic gas, a priority fee above the max fee, a cost beyond 256 bits.
    pub fn validate(&self) -> Result<()> {
        if self.chain_id == 0 {
            return Err(ChainsError::Input("--chain-id: must not be 0".into()));
        }
        if self.nonce == u64::MAX {
            return Err(ChainsError::Input(
                "--nonce: must be below 2^64-1 (EIP-2681)".into(),
            ));
        }
        let needed = intrinsic_gas(&self.data);
        if self.gas_limit < needed {
            return Err(ChainsError::Input(format!(
                "--gas-limit: {} is below the {needed} gas this transaction needs before it runs",
                self.gas_limit
            )));
        }
        if self.max_priority_fee_per_gas > self.max_fee_per_gas {
            return Err(ChainsError::Input(format!(
                "--max-priority-fee-per-gas: {} exceeds --max-fee-per-gas {}",
                self.max_priority_fee_per_gas, self.max_fee_per_gas
            )));
        }
        // The most the sender can be charged must fit the EVM's 256-bit balance arithmetic.
        let max_cost = U256::from(self.gas_limit)
            .checked_mul(U256::from(self.max_fee_per_gas))
            .and_then(|gas| gas.checked_add(self.value));
        if max_cost.is_none() {
            return Err(ChainsError::Input(
                "--value-wei: value plus gas-limit × max-fee-per-gas overflows 256 bits".into(),
            ));
        }
        Ok(())
    }

    fn to_tx(&self) -> TxEip1559 {
        TxEip1559 {
            chain_id: self.chain_id,
            nonce: self.nonce,
            gas_limit: self.gas_limit,
            max_fee_per_gas: self.max_fee_per_gas,
            max_priority_fee_per_gas: self.max_priority_fee_per_gas,
            to: TxKind::Call(self.to),
            value: self.value,
            access_list: Default::default(),
            input: self.data.clone(),
        }
    }
}

/// An EIP-1559 transaction from a derived key, waiting for its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedEthTx {
    tx: TxEip1559,
    public_key: PublicKey,
    from: Address,
}

impl UnsignedEthTx {
    /// Builds the transaction `public_key` (the derived key of the sender) will sign.
    pub fn new(transfer: &EthTransfer, public_key: PublicKey) -> Result<Self> {
        transfer.validate()?;
        Ok(Self {
            tx: transfer.to_tx(),
            from: evm_address(&public_key),
            public_key,
        })
    }

    pub fn tx(&self) -> &TxEip1559 {
        &self.tx
    }

    /// The derived address the transaction is sent from.
    pub fn from(&self) -> Address {
        self.from
    }

    /// `keccak256(0x02 ‖ rlp([chain_id, nonce, …, access_list]))`.
    pub fn signing_hash(&self) -> B256 {
        self.tx.signature_hash()
    }

    /// The signing hash as the payload of a `sign` request. Fails only if the hash is not below
    /// the group order (odds about 2^-128); changing the nonce or a fee gives another hash.
    pub fn payload(&self) -> Result<EcdsaPayload> {
        EcdsaPayload::from_bytes(self.signing_hash().0)
            .map_err(|e| ChainsError::failed("signing hash", e))
    }

    /// Puts the network's signature into the transaction (`yParity` = recovery id) and checks
    /// it twice: against the derived key with our own verification, and by recovering the
    /// sender from the encoded transaction with alloy's recovery.
    pub fn apply_signature(self, signature: &EcdsaSignature) -> Result<SignedEthTx> {
        let payload = self.payload()?;
        signature
            .verify(&self.public_key, &payload)
            .map_err(|e| ChainsError::failed("signature of the transaction", e))?;
        let rs = signature.to_rs_bytes();
        let alloy_signature = Signature::new(
            U256::from_be_slice(&rs[..32]),
            U256::from_be_slice(&rs[32..]),
            signature.recovery_id() == 1,
        );
        let signed: Signed<TxEip1559> = self.tx.into_signed(alloy_signature);
        let envelope = TxEnvelope::from(signed);
        let raw = envelope.encoded_2718();
        let decoded = decode_signed(&raw)?;
        if decoded.from != self.from {
            return Err(ChainsError::Failed(format!(
                "the signed transaction recovers to {}, not to the derived address {}",
                decoded.from, self.from
            )));
        }
        Ok(SignedEthTx {
            hash: *envelope.tx_hash(),
            from: self.from,
            raw_transaction: raw,
            tx: decoded.tx,
        })
    }
}

/// A signed EIP-1559 transaction, ready for `eth_sendRawTransaction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEthTx {
    /// EIP-2718 bytes: `0x02 ‖ rlp([..., y_parity, r, s])`.
    pub raw_transaction: Vec<u8>,
    /// `keccak256(raw_transaction)`.
    pub hash: B256,
    /// The sender, recovered from the signature.
    pub from: Address,
    pub tx: TxEip1559,
}

/// What `chainsig eth transfer --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedEthTxJson {
    pub raw_transaction: String,
    pub hash: String,
    pub from: String,
}

impl SignedEthTx {
    pub fn raw_transaction_hex(&self) -> String {
        format!("0x{}", hex::encode(&self.raw_transaction))
    }

    pub fn to_json(&self) -> SignedEthTxJson {
        SignedEthTxJson {
            raw_transaction: self.raw_transaction_hex(),
            hash: self.hash.to_string(),
            from: self.from.to_checksum(None),
        }
    }
}

/// A raw transaction taken apart again: the EIP-1559 fields and the recovered sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedEthTx {
    pub tx: TxEip1559,
    pub signature: Signature,
    pub from: Address,
    pub hash: B256,
}

/// Decodes EIP-2718 bytes of an EIP-1559 transaction and recovers its sender.
pub fn decode_signed(raw: &[u8]) -> Result<DecodedEthTx> {
    let envelope = TxEnvelope::decode_2718_exact(raw)
        .map_err(|e| ChainsError::failed("decoding the signed transaction", e))?;
    let TxEnvelope::Eip1559(signed) = envelope else {
        return Err(ChainsError::Failed(format!(
            "expected an EIP-1559 transaction, got type {}",
            envelope.ty()
        )));
    };
    let from = signed
        .recover_signer()
        .map_err(|e| ChainsError::failed("recovering the sender", e))?;
    Ok(DecodedEthTx {
        hash: *signed.hash(),
        signature: *signed.signature(),
        from,
        tx: signed.strip_signature(),
    })
}

/// Builds, signs (one `sign` request for `path`) and checks an EIP-1559 transaction.
pub fn sign_transfer(
    signer: &dyn Signer,
    path: &str,
    transfer: &EthTransfer,
) -> Result<SignedEthTx> {
    let public_key = signer.public_key(path)?;
    let unsigned = UnsignedEthTx::new(transfer, public_key)?;
    let signature = signer.sign(path, &unsigned.payload()?)?;
    unsigned.apply_signature(&signature)
}
