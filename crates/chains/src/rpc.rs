//! Talking to destination chains: a small Ethereum JSON-RPC client and a small Esplora client,
//! both blocking over HTTP(S) (`ureq`, rustls). Every failure is a one-line
//! [`ChainsError::Failed`] naming the call, and a node's own error message is passed on.

use std::time::Duration;

use alloy_primitives::{Address, B256};
use bitcoin::{Amount, OutPoint, Txid};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::btc::Utxo;
use crate::error::{ChainsError, Result};

/// How long one request may take, connect to last byte.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest response body read (Esplora's UTXO lists are the big ones).
const MAX_BODY: u64 = 16 * 1024 * 1024;

fn check_url(flag: &str, url: &str) -> Result<String> {
    let url = url.trim();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => {
            Ok(url.trim_end_matches('/').to_string())
        }
        _ => Err(ChainsError::Input(format!(
            "{flag}: `{url}` is not an http:// or https:// URL"
        ))),
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .build(),
    )
}

/// Reads a response: its status and body text (bounded), errors named after `what`.
fn read(
    what: &str,
    response: core::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<(u16, String)> {
    let mut response = response.map_err(|e| ChainsError::failed(what, e))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_string()
        .map_err(|e| ChainsError::failed(what, e))?;
    Ok((status, body))
}

/// A short, one-line excerpt of a body for error messages.
fn excerpt(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 200 {
        format!("{}…", one_line.chars().take(200).collect::<String>())
    } else {
        one_line
    }
}

// ---------------------------------------------------------------------------------------
// Ethereum JSON-RPC
// ---------------------------------------------------------------------------------------

/// An Ethereum JSON-RPC endpoint (`--rpc-url`).
pub struct EthRpc {
    url: String,
    agent: ureq::Agent,
}

impl EthRpc {
    /// Checks that `url` is http(s); connects only on the first call.
    pub fn new(url: &str) -> Result<Self> {
        Ok(Self {
            url: check_url("--rpc-url", url)?,
            agent: agent(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// One JSON-RPC 2.0 call; a node error becomes `method: node error CODE: MESSAGE`.
    pub fn call(&self, method: &str, params: Value) -> Result<Value> {
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let (status, body) = read(
            method,
            self.agent
                .post(&self.url)
                .header("content-type", "application/json")
                .send(request.to_string()),
        )?;
        let reply: Value = serde_json::from_str(&body).map_err(|_| {
            ChainsError::Failed(format!(
                "{method}: HTTP {status}, not a JSON-RPC answer: {}",
                excerpt(&body)
            ))
        })?;
        if let Some(error) = reply.get("error").filter(|e| !e.is_null()) {
            let code = error
                .get("code")
                .and_then(Value::as_i64)
                .unwrap_or_default();
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .map(excerpt)
                .unwrap_or_else(|| excerpt(&error.to_string()));
            return Err(ChainsError::Failed(format!(
                "{method}: node error {code}: {message}"
            )));
        }
        match reply.get("result") {
            Some(result) if status == 200 => Ok(result.clone()),
            _ => Err(ChainsError::Failed(format!(
                "{method}: HTTP {status} without a result: {}",
                excerpt(&body)
            ))),
        }
    }

    fn quantity(&self, method: &str, params: Value) -> Result<u128> {
        let result = self.call(method, params)?;
        parse_quantity(&result)
            .ok_or_else(|| ChainsError::Failed(format!("{method}: `{result}` is not a quantity")))
    }

    /// `eth_chainId`.
    pub fn chain_id(&self) -> Result<u64> {
        let id = self.quantity("eth_chainId", json!([]))?;
        u64::try_from(id).map_err(|_| ChainsError::Failed(format!("eth_chainId: {id} overflows")))
    }

    /// `eth_getTransactionCount(address, "pending")`: the next nonce, counting the pool.
    pub fn transaction_count(&self, address: Address) -> Result<u64> {
        let n = self.quantity(
            "eth_getTransactionCount",
            json!([address.to_checksum(None), "pending"]),
        )?;
        u64::try_from(n)
            .map_err(|_| ChainsError::Failed(format!("eth_getTransactionCount: {n} overflows")))
    }

    /// `eth_maxPriorityFeePerGas`: the node's suggested tip.
    pub fn max_priority_fee_per_gas(&self) -> Result<u128> {
        self.quantity("eth_maxPriorityFeePerGas", json!([]))
    }

    /// The latest block's `baseFeePerGas`.
    pub fn base_fee_per_gas(&self) -> Result<u128> {
        let block = self.call("eth_getBlockByNumber", json!(["latest", false]))?;
        block
            .get("baseFeePerGas")
            .and_then(parse_quantity)
            .ok_or_else(|| {
                ChainsError::Failed(
                    "eth_getBlockByNumber: the latest block has no baseFeePerGas (no EIP-1559?)"
                        .into(),
                )
            })
    }

    /// `eth_sendRawTransaction`: the hash the node reports.
    pub fn send_raw_transaction(&self, raw: &[u8]) -> Result<B256> {
        let result = self.call(
            "eth_sendRawTransaction",
            json!([format!("0x{}", hex::encode(raw))]),
        )?;
        result
            .as_str()
            .and_then(|s| s.parse::<B256>().ok())
            .ok_or_else(|| {
                ChainsError::Failed(format!(
                    "eth_sendRawTransaction: `{result}` is not a transaction hash"
                ))
            })
    }
}

/// A JSON-RPC quantity: `0x`-prefixed hex without leading zeros (leniently, any hex).
fn parse_quantity(value: &Value) -> Option<u128> {
    let digits = value.as_str()?.strip_prefix("0x")?;
    if digits.is_empty() {
        return None;
    }
    u128::from_str_radix(digits, 16).ok()
}

/// The usual EIP-1559 choice when the user gives no max fee: twice the latest base fee plus
/// the tip, which survives several full blocks of base-fee growth.
pub fn suggested_max_fee(base_fee: u128, priority_fee: u128) -> u128 {
    base_fee.saturating_mul(2).saturating_add(priority_fee)
}

// ---------------------------------------------------------------------------------------
// Esplora
// ---------------------------------------------------------------------------------------

/// An Esplora HTTP API (`--esplora-url`, e.g. `…/api` or `…/testnet/api`).
pub struct Esplora {
    url: String,
    agent: ureq::Agent,
}

#[derive(Deserialize)]
struct EsploraUtxo {
    txid: String,
    vout: u32,
    value: u64,
    #[serde(default)]
    status: EsploraStatus,
}

#[derive(Deserialize, Default)]
struct EsploraStatus {
    #[serde(default)]
    confirmed: bool,
}

impl Esplora {
    pub fn new(url: &str) -> Result<Self> {
        Ok(Self {
            url: check_url("--esplora-url", url)?,
            agent: agent(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// `GET /address/:address/utxo`: the confirmed outputs of `address`, largest first.
    pub fn confirmed_utxos(&self, address: &bitcoin::Address) -> Result<Vec<Utxo>> {
        let what = "esplora /address/…/utxo";
        let (status, body) = read(
            what,
            self.agent
                .get(format!("{}/address/{address}/utxo", self.url))
                .call(),
        )?;
        if status != 200 {
            return Err(ChainsError::Failed(format!(
                "{what}: HTTP {status}: {}",
                excerpt(&body)
            )));
        }
        let listed: Vec<EsploraUtxo> = serde_json::from_str(&body)
            .map_err(|e| ChainsError::Failed(format!("{what}: unexpected answer: {e}")))?;
        let mut utxos = listed
            .into_iter()
            .filter(|u| u.status.confirmed)
            .map(|u| {
                let txid: Txid = u.txid.parse().map_err(|_| {
                    ChainsError::Failed(format!("{what}: `{}` is not a txid", u.txid))
                })?;
                Ok(Utxo {
                    outpoint: OutPoint { txid, vout: u.vout },
                    amount: Amount::from_sat(u.value),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        utxos.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.outpoint.cmp(&b.outpoint)));
        Ok(utxos)
    }

    /// `POST /tx` with the raw transaction hex: the txid the server reports.
    pub fn broadcast(&self, raw_hex: &str) -> Result<Txid> {
        let what = "esplora POST /tx";
        let (status, body) = read(
            what,
            self.agent
                .post(format!("{}/tx", self.url))
                .header("content-type", "text/plain")
                .send(raw_hex.to_string()),
        )?;
        if status != 200 {
            return Err(ChainsError::Failed(format!(
                "{what}: HTTP {status}: {}",
                excerpt(&body)
            )));
        }
        body.trim()
            .parse()
            .map_err(|_| ChainsError::Failed(format!("{what}: `{}` is not a txid", excerpt(&body))))
    }
}
