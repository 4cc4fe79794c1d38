//! Watching the network come up: the contract's state over JSON-RPC and each node's
//! `/state` over HTTP, summed up in one line that is printed when it changes.

use std::time::Duration;

use chainsig_devnet::client::DevnetClient;
use near_primitives::types::AccountId;
use serde_json::Value;

/// One node as its `/state` shows it (`None` fields: not reachable yet).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeView {
    pub name: String,
    pub up: bool,
    pub participant_id: Option<u32>,
    pub triples: usize,
    pub presignatures: usize,
    pub peers_up: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The contract's `state()`, verbatim (`Null` if the view failed).
    pub contract: Value,
    pub nodes: Vec<NodeView>,
}

/// The name of a contract state: `"NotInitialized"` or the tag of `{"Running":{...}}`.
pub fn state_name(state: &Value) -> &str {
    match state {
        Value::String(name) => name,
        Value::Object(map) => map.keys().next().map_or("?", String::as_str),
        _ => "unknown",
    }
}

/// `secp256k1:...` once the contract has a key.
pub fn public_key(state: &Value) -> Option<String> {
    state
        .as_object()?
        .values()
        .next()?
        .get("public_key")?
        .as_str()
        .map(str::to_owned)
}

/// Participant ids by account, from the Running (or Initializing) participant list.
pub fn participant_id(state: &Value, account: &str) -> Option<u32> {
    let body = state.as_object()?.values().next()?;
    let list = body
        .get("participants")
        .or_else(|| body.get("candidates"))?
        .as_array()?;
    list.iter()
        .find(|p| p.get("account_id").and_then(Value::as_str) == Some(account))?
        .get("id")?
        .as_u64()
        .and_then(|id| u32::try_from(id).ok())
}

pub struct Watcher {
    http: reqwest::Client,
    chain: DevnetClient,
    contract: AccountId,
}

impl Watcher {
    pub fn new(rpc_url: &str, contract: AccountId) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default();
        Watcher {
            http,
            chain: DevnetClient::new(rpc_url),
            contract,
        }
    }

    /// The contract and every node in `nodes` (name, HTTP URL).
    pub async fn observe(&self, nodes: &[(String, String)]) -> Observation {
        let contract = self
            .chain
            .view::<Value>(&self.contract, "state", &serde_json::json!({}))
            .await
            .unwrap_or(Value::Null);
        let mut views = Vec::new();
        for (name, http_url) in nodes {
            views.push(self.node(name, http_url).await);
        }
        Observation {
            contract,
            nodes: views,
        }
    }

    async fn node(&self, name: &str, http_url: &str) -> NodeView {
        let down = NodeView {
            name: name.to_owned(),
            ..NodeView::default()
        };
        let Ok(response) = self.http.get(format!("{http_url}/state")).send().await else {
            return down;
        };
        let Ok(body) = response.bytes().await else {
            return down;
        };
        let Ok(state) = serde_json::from_slice::<Value>(&body) else {
            return down;
        };
        let count = |field: &str| state.get(field).and_then(Value::as_u64).unwrap_or(0) as usize;
        NodeView {
            name: name.to_owned(),
            up: true,
            participant_id: state
                .get("participant_id")
                .and_then(Value::as_u64)
                .and_then(|id| u32::try_from(id).ok()),
            triples: count("triples_owned"),
            presignatures: count("presignatures_owned"),
            peers_up: state
                .get("peers_up")
                .and_then(Value::as_array)
                .map_or(0, Vec::len),
        }
    }
}

impl Observation {
    /// Running, and every node owns at least `low` presignatures.
    pub fn is_ready(&self, low: usize) -> bool {
        state_name(&self.contract) == "Running"
            && self.nodes.iter().all(|n| n.up && n.presignatures >= low)
    }

    /// `contract Running · node0 up, presignatures 2, triples 8, peers 3 · ...`
    pub fn line(&self) -> String {
        let mut parts = vec![format!("contract {}", state_name(&self.contract))];
        for node in &self.nodes {
            parts.push(if node.up {
                format!(
                    "{} presignatures {} triples {} peers {}",
                    node.name, node.presignatures, node.triples, node.peers_up
                )
            } else {
                format!("{} starting", node.name)
            });
        }
        parts.join(" · ")
    }
}
