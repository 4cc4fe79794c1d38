//! Bitcoin: P2WPKH spends from a derived key, one `sign` request per input.
//!
//! [`UnsignedBtcTx::build`] picks the fee and change, [`UnsignedBtcTx::payloads`] are the BIP143
//! sighashes (SIGHASH_ALL) to sign, [`UnsignedBtcTx::apply_signatures`] builds the witnesses
//! (DER signature ‖ 0x01, compressed key) and has libbitcoinconsensus (Bitcoin Core's own
//! script interpreter) verify every input. [`sign_spend`] runs the whole flow with a
//! [`Signer`]. The sighash, script and serialization code is the `bitcoin` crate's.

use core::fmt;
use core::str::FromStr;
use std::collections::HashSet;

use bitcoin::absolute::LockTime;
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::hashes::Hash;
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::transaction::{predict_weight, InputWeightPrediction, Version};
use bitcoin::{
    Address, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness,
};
use chainsig_primitives::{EcdsaPayload, EcdsaSignature, PublicKey};
use serde::Serialize;

use crate::address::{btc_p2wpkh_address, btc_public_key, parse_btc_address, BtcNetwork};
use crate::error::{ChainsError, Result};
use crate::signer::Signer;

/// An output of the derived address to spend: `txid:vout:sats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utxo {
    pub outpoint: OutPoint,
    pub amount: Amount,
}

impl FromStr for Utxo {
    type Err = ChainsError;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let bad =
            |why: &str| ChainsError::Input(format!("--utxo `{s}`: {why}; expected txid:vout:sats"));
        let mut parts = s.split(':');
        let (Some(txid), Some(vout), Some(sats), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("not three fields"));
        };
        if txid.len() != 64 {
            return Err(bad("the txid must be 64 hex digits"));
        }
        let txid = Txid::from_str(txid).map_err(|_| bad("the txid is not hex"))?;
        let vout = vout
            .parse::<u32>()
            .map_err(|_| bad("vout is not a number below 2^32"))?;
        let amount = parse_sats(sats).map_err(|e| bad(&e))?;
        if amount == Amount::ZERO {
            return Err(bad("an output of 0 sats cannot be spent usefully"));
        }
        Ok(Utxo {
            outpoint: OutPoint { txid, vout },
            amount,
        })
    }
}

/// A payment: `address:sats`, the address checked against the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub address: Address,
    pub amount: Amount,
}

impl Payment {
    pub fn parse(s: &str, network: BtcNetwork) -> Result<Self> {
        let s = s.trim();
        let Some((address, sats)) = s.rsplit_once(':') else {
            return Err(ChainsError::Input(format!(
                "--to `{s}`: expected address:sats"
            )));
        };
        let address = parse_btc_address(address, network)
            .map_err(|e| ChainsError::Input(format!("--to: {}", e.message())))?;
        let amount =
            parse_sats(sats).map_err(|e| ChainsError::Input(format!("--to `{s}`: {e}")))?;
        Ok(Payment { address, amount })
    }
}

/// A whole number of satoshis, at most 21 million BTC.
fn parse_sats(s: &str) -> core::result::Result<Amount, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{s}` is not a whole number of satoshis"));
    }
    let sats = s
        .parse::<u64>()
        .map_err(|_| format!("{s} sats overflows"))?;
    let amount = Amount::from_sat(sats);
    if amount > Amount::MAX_MONEY {
        return Err(format!("{s} sats is more than 21 million BTC"));
    }
    Ok(amount)
}

/// A fee rate in sat/vB, kept in thousandths (millisat per vB) so that `1.5` is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FeeRate {
    millisat_per_vb: u64,
}

impl FeeRate {
    /// Bitcoin Core's default minimum relay fee: 1 sat/vB.
    pub const MIN_RELAY: FeeRate = FeeRate {
        millisat_per_vb: 1000,
    };
    /// Refused as surely a mistake (Bitcoin Core's `maxfeerate` default is 0.1 BTC/kvB).
    pub const MAX: FeeRate = FeeRate {
        millisat_per_vb: 10_000_000,
    };

    pub fn from_sat_per_vb(sats: u64) -> Option<Self> {
        sats.checked_mul(1000)
            .map(|millisat_per_vb| FeeRate { millisat_per_vb })
    }

    /// The fee for `vsize` virtual bytes, rounded up.
    pub fn fee_for(&self, vsize: u64) -> Amount {
        let millisats = u128::from(self.millisat_per_vb) * u128::from(vsize);
        Amount::from_sat(millisats.div_ceil(1000) as u64)
    }
}

impl fmt::Display for FeeRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.millisat_per_vb / 1000;
        let frac = self.millisat_per_vb % 1000;
        if frac == 0 {
            write!(f, "{whole} sat/vB")
        } else {
            let digits = format!("{frac:03}");
            write!(f, "{whole}.{} sat/vB", digits.trim_end_matches('0'))
        }
    }
}

impl FromStr for FeeRate {
    type Err = ChainsError;

    /// `N` or `N.NNN` sat/vB, at least 1 and at most 10,000.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let bad = || {
            ChainsError::Input(format!(
                "--fee-rate `{s}`: expected sat/vB as a number like 2 or 1.5"
            ))
        };
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        if whole.is_empty()
            || frac.len() > 3
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let too_high = || {
            ChainsError::Input(format!(
                "--fee-rate {s}: above the {} this tool accepts",
                FeeRate::MAX
            ))
        };
        let whole: u64 = whole.parse().map_err(|_| too_high())?;
        let frac: u64 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<3}").parse().map_err(|_| bad())?
        };
        let rate = whole
            .checked_mul(1000)
            .and_then(|m| m.checked_add(frac))
            .map(|millisat_per_vb| FeeRate { millisat_per_vb })
            .filter(|rate| *rate <= FeeRate::MAX)
            .ok_or_else(too_high)?;
        if rate < FeeRate::MIN_RELAY {
            return Err(ChainsError::Input(format!(
                "--fee-rate {s}: fee too low, nodes relay nothing below {}",
                FeeRate::MIN_RELAY
            )));
        }
        Ok(rate)
    }
}

/// What to spend and where to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtcSpend {
    pub network: BtcNetwork,
    /// Outputs of the derived P2WPKH address.
    pub utxos: Vec<Utxo>,
    pub outputs: Vec<Payment>,
    /// Where the rest goes; without it, a rest worth a change output is refused rather than
    /// silently paid as fee.
    pub change: Option<Address>,
    pub fee_rate: FeeRate,
}

/// A P2WPKH spend waiting for one signature per input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedBtcTx {
    tx: Transaction,
    spent: Vec<TxOut>,
    public_key: PublicKey,
    fee: Amount,
    change: Option<Amount>,
}

fn sum(amounts: impl IntoIterator<Item = Amount>, what: &str) -> Result<Amount> {
    amounts
        .into_iter()
        .try_fold(Amount::ZERO, |acc, a| acc.checked_add(a))
        .filter(|total| *total <= Amount::MAX_MONEY)
        .ok_or_else(|| ChainsError::Input(format!("{what}: amounts overflow 21 million BTC")))
}

fn predicted_vsize(inputs: usize, output_script_lens: &[usize]) -> u64 {
    predict_weight(
        std::iter::repeat_n(InputWeightPrediction::P2WPKH_MAX, inputs),
        output_script_lens.iter().copied(),
    )
    .to_vbytes_ceil()
}

impl UnsignedBtcTx {
    /// Builds a version-2, RBF-signalling transaction spending `spend.utxos` (owned by the
    /// P2WPKH address of `public_key`) to `spend.outputs` and, if worth it, a change output.
    /// The fee is `fee_rate` × the vsize the signed transaction will have at most.
    pub fn build(spend: &BtcSpend, public_key: PublicKey) -> Result<Self> {
        if spend.utxos.is_empty() {
            return Err(ChainsError::Input("--utxo: at least one is needed".into()));
        }
        if spend.outputs.is_empty() {
            return Err(ChainsError::Input("--to: at least one is needed".into()));
        }
        let mut seen = HashSet::new();
        for utxo in &spend.utxos {
            if !seen.insert(utxo.outpoint) {
                return Err(ChainsError::Input(format!(
                    "--utxo: {} is listed twice",
                    utxo.outpoint
                )));
            }
        }
        for payment in &spend.outputs {
            if !payment
                .address
                .as_unchecked()
                .is_valid_for_network(spend.network.to_bitcoin())
            {
                return Err(ChainsError::Input(format!(
                    "--to: {} is not an address on bitcoin {}",
                    payment.address, spend.network
                )));
            }
            let dust = payment.address.script_pubkey().minimal_non_dust();
            if payment.amount < dust {
                return Err(ChainsError::Input(format!(
                    "--to: {} sats to {} is dust; the least such an output may carry is {} sats",
                    payment.amount.to_sat(),
                    payment.address,
                    dust.to_sat()
                )));
            }
        }
        if let Some(change) = &spend.change {
            if !change
                .as_unchecked()
                .is_valid_for_network(spend.network.to_bitcoin())
            {
                return Err(ChainsError::Input(format!(
                    "--change: {change} is not an address on bitcoin {}",
                    spend.network
                )));
            }
        }

        let total_in = sum(spend.utxos.iter().map(|u| u.amount), "--utxo")?;
        let total_out = sum(spend.outputs.iter().map(|p| p.amount), "--to")?;
        let Some(rest) = total_in.checked_sub(total_out) else {
            return Err(ChainsError::Input(format!(
                "outputs ({} sats) exceed inputs ({} sats)",
                total_out.to_sat(),
                total_in.to_sat()
            )));
        };

        let mut script_lens: Vec<usize> = spend
            .outputs
            .iter()
            .map(|p| p.address.script_pubkey().len())
            .collect();
        let fee_without_change = spend
            .fee_rate
            .fee_for(predicted_vsize(spend.utxos.len(), &script_lens));
        if rest < fee_without_change {
            return Err(ChainsError::Input(format!(
                "inputs ({} sats) do not cover outputs ({} sats) plus the fee ({} sats at {})",
                total_in.to_sat(),
                total_out.to_sat(),
                fee_without_change.to_sat(),
                spend.fee_rate
            )));
        }

        let mut outputs: Vec<TxOut> = spend
            .outputs
            .iter()
            .map(|p| TxOut {
                value: p.amount,
                script_pubkey: p.address.script_pubkey(),
            })
            .collect();
        let mut change_amount = None;
        let mut fee = rest;
        match &spend.change {
            Some(change) => {
                let change_script = change.script_pubkey();
                script_lens.push(change_script.len());
                let fee_with_change = spend
                    .fee_rate
                    .fee_for(predicted_vsize(spend.utxos.len(), &script_lens));
                if let Some(amount) = rest.checked_sub(fee_with_change) {
                    if amount >= change_script.minimal_non_dust() {
                        fee = fee_with_change;
                        change_amount = Some(amount);
                        outputs.push(TxOut {
                            value: amount,
                            script_pubkey: change_script,
                        });
                    }
                }
                // Otherwise the rest is too small for a change output and goes to the fee.
            }
            None => {
                let excess = rest - fee_without_change;
                let p2wpkh_dust = btc_p2wpkh_address(&public_key, spend.network)
                    .script_pubkey()
                    .minimal_non_dust();
                if excess >= p2wpkh_dust {
                    return Err(ChainsError::Input(format!(
                        "inputs exceed outputs plus fee by {} sats, which would be paid as fee; \
                         pass --change <address> or send it explicitly",
                        excess.to_sat()
                    )));
                }
            }
        }

        let own_script = btc_p2wpkh_address(&public_key, spend.network).script_pubkey();
        let tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: spend
                .utxos
                .iter()
                .map(|u| TxIn {
                    previous_output: u.outpoint,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                    witness: Witness::new(),
                })
                .collect(),
            output: outputs,
        };
        let spent = spend
            .utxos
            .iter()
            .map(|u| TxOut {
                value: u.amount,
                script_pubkey: own_script.clone(),
            })
            .collect();
        Ok(Self {
            tx,
            spent,
            public_key,
            fee,
            change: change_amount,
        })
    }

    pub fn tx(&self) -> &Transaction {
        &self.tx
    }

    pub fn fee(&self) -> Amount {
        self.fee
    }

    /// The change output's amount, if one was made (always the last output).
    pub fn change(&self) -> Option<Amount> {
        self.change
    }

    /// One BIP143 SIGHASH_ALL digest per input, in input order: what the network signs.
    pub fn payloads(&self) -> Result<Vec<EcdsaPayload>> {
        let mut cache = SighashCache::new(&self.tx);
        (0..self.tx.input.len())
            .map(|index| {
                let spent = &self.spent[index];
                let sighash = cache
                    .p2wpkh_signature_hash(
                        index,
                        &spent.script_pubkey,
                        spent.value,
                        EcdsaSighashType::All,
                    )
                    .map_err(|e| ChainsError::failed("BIP143 sighash", e))?;
                EcdsaPayload::from_bytes(sighash.to_byte_array())
                    .map_err(|e| ChainsError::failed("BIP143 sighash", e))
            })
            .collect()
    }

    /// Puts one signature per input (in input order) into the witnesses and checks every
    /// input with libbitcoinconsensus.
    pub fn apply_signatures(self, signatures: &[EcdsaSignature]) -> Result<SignedBtcTx> {
        if signatures.len() != self.tx.input.len() {
            return Err(ChainsError::Failed(format!(
                "{} signatures for {} inputs",
                signatures.len(),
                self.tx.input.len()
            )));
        }
        let payloads = self.payloads()?;
        let key = btc_public_key(&self.public_key);
        let mut tx = self.tx;
        for (index, (signature, payload)) in signatures.iter().zip(&payloads).enumerate() {
            signature
                .verify(&self.public_key, payload)
                .map_err(|e| ChainsError::failed(&format!("signature of input {index}"), e))?;
            let compact =
                bitcoin::secp256k1::ecdsa::Signature::from_compact(&signature.to_rs_bytes())
                    .map_err(|e| ChainsError::failed(&format!("signature of input {index}"), e))?;
            let signature = bitcoin::ecdsa::Signature {
                signature: compact,
                sighash_type: EcdsaSighashType::All,
            };
            tx.input[index].witness = Witness::p2wpkh(&signature, &key.0);
        }
        let signed = SignedBtcTx {
            tx,
            spent: self.spent,
            fee: self.fee,
        };
        signed.verify()?;
        Ok(signed)
    }
}

/// A signed spend, every input verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBtcTx {
    pub tx: Transaction,
    /// The outputs the inputs spend, in input order.
    pub spent: Vec<TxOut>,
    pub fee: Amount,
}

/// What `chainsig btc send --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedBtcTxJson {
    pub raw_transaction: String,
    pub txid: String,
    pub fee_sats: u64,
    pub vsize: u64,
}

impl SignedBtcTx {
    pub fn raw_transaction_hex(&self) -> String {
        serialize_hex(&self.tx)
    }

    pub fn txid(&self) -> Txid {
        self.tx.compute_txid()
    }

    pub fn vsize(&self) -> u64 {
        self.tx.vsize() as u64
    }

    /// Runs every input's script through libbitcoinconsensus (Bitcoin Core's interpreter,
    /// all standard flags).
    pub fn verify(&self) -> Result<()> {
        verify_inputs(&self.tx, &self.spent)
    }

    pub fn to_json(&self) -> SignedBtcTxJson {
        SignedBtcTxJson {
            raw_transaction: self.raw_transaction_hex(),
            txid: self.txid().to_string(),
            fee_sats: self.fee.to_sat(),
            vsize: self.vsize(),
        }
    }
}

/// Checks every input of `tx` against the output it spends (`spent[i]` for input `i`) with
/// libbitcoinconsensus.
pub fn verify_inputs(tx: &Transaction, spent: &[TxOut]) -> Result<()> {
    if spent.len() != tx.input.len() {
        return Err(ChainsError::Failed(format!(
            "{} spent outputs for {} inputs",
            spent.len(),
            tx.input.len()
        )));
    }
    let bytes = bitcoin::consensus::encode::serialize(tx);
    for (index, prevout) in spent.iter().enumerate() {
        prevout
            .script_pubkey
            .verify(index, prevout.value, &bytes)
            .map_err(|e| {
                ChainsError::Failed(format!(
                    "input {index} fails script verification (libbitcoinconsensus): {e:?}"
                ))
            })?;
    }
    Ok(())
}

/// Largest first: the fewest of `candidates` (taken in the given order) whose total pays
/// `outputs` and the fee of a transaction with a change output (if `change` is given).
pub fn select_utxos(
    candidates: &[Utxo],
    outputs: &[Payment],
    change: Option<&Address>,
    fee_rate: FeeRate,
) -> Result<Vec<Utxo>> {
    let total_out = sum(outputs.iter().map(|p| p.amount), "--to")?;
    let mut script_lens: Vec<usize> = outputs
        .iter()
        .map(|p| p.address.script_pubkey().len())
        .collect();
    if let Some(change) = change {
        script_lens.push(change.script_pubkey().len());
    }
    let mut total_in = Amount::ZERO;
    for (count, utxo) in candidates.iter().enumerate() {
        total_in = total_in
            .checked_add(utxo.amount)
            .ok_or_else(|| ChainsError::Input("--utxo: amounts overflow".into()))?;
        let fee = fee_rate.fee_for(predicted_vsize(count + 1, &script_lens));
        if total_out
            .checked_add(fee)
            .is_some_and(|need| total_in >= need)
        {
            return Ok(candidates[..=count].to_vec());
        }
    }
    Err(ChainsError::Input(format!(
        "the {} available outputs ({} sats) do not cover outputs ({} sats) plus the fee at {}",
        candidates.len(),
        total_in.to_sat(),
        total_out.to_sat(),
        fee_rate
    )))
}

/// Builds, signs (one `sign` request for `path` per input) and verifies a P2WPKH spend.
pub fn sign_spend(signer: &dyn Signer, path: &str, spend: &BtcSpend) -> Result<SignedBtcTx> {
    let public_key = signer.public_key(path)?;
    let unsigned = UnsignedBtcTx::build(spend, public_key)?;
    let signatures = unsigned
        .payloads()?
        .iter()
        .map(|payload| signer.sign(path, payload))
        .collect::<Result<Vec<_>>>()?;
    unsigned.apply_signatures(&signatures)
}
