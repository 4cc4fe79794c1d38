//! NEP-297 events the contract logs, one `EVENT_JSON:` line each, so an indexer can find
//! requests in receipts' logs without reading the contract's state. [`SignRequestEvent::parse`]
//! reads them back (for nodes and tests).

use chainsig_primitives::{SignRequest, SignatureRequest, Tweak};
use near_sdk::{env, AccountId, NearToken};
use serde::{Deserialize, Serialize};

pub const EVENT_STANDARD: &str = "chainsig";
pub const EVENT_VERSION: &str = "1.0.0";
pub const EVENT_PREFIX: &str = "EVENT_JSON:";

#[derive(Serialize, Deserialize)]
struct Nep297<T> {
    standard: String,
    version: String,
    event: String,
    data: [T; 1],
}

/// The whole log line of an event: `EVENT_JSON:{"standard":"chainsig","version":"1.0.0",
/// "event":…,"data":[…]}`.
pub fn event_line<T: Serialize>(event: &str, data: &T) -> String {
    let body = serde_json::to_string(&Nep297 {
        standard: EVENT_STANDARD.into(),
        version: EVENT_VERSION.into(),
        event: event.into(),
        data: [data],
    })
    .unwrap_or_else(|_| env::abort());
    format!("{EVENT_PREFIX}{body}")
}

/// `sign_request`: a `sign` call is waiting for a signature.
///
/// `data[0]` is `{"predecessor":"<account>","request":{"path":…,"payload_v2":{"Ecdsa":"<hex>"},
/// "domain_id":0},"tweak":"<64 hex>","yield_id":"<base58 of the 32-byte data id>",
/// "nonce":<u64>,"deposit":"<yoctoNEAR>"}`. The request is always in the current form, whichever
/// form the caller sent. `respond` names the request as [`Self::signature_request`] does:
/// `{"tweak":…,"payload":{"Ecdsa":…},"domain_id":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignRequestEvent {
    pub predecessor: AccountId,
    pub request: SignRequest,
    pub tweak: Tweak,
    pub yield_id: String,
    pub nonce: u64,
    pub deposit: NearToken,
}

impl SignRequestEvent {
    pub const NAME: &'static str = "sign_request";

    pub fn emit(&self) {
        env::log_str(&event_line(Self::NAME, self));
    }

    /// Reads a log line: `None` if it is not a `chainsig` `sign_request` event, an error if it
    /// claims to be one but does not parse.
    pub fn parse(line: &str) -> Option<Result<Self, serde_json::Error>> {
        let body = line.strip_prefix(EVENT_PREFIX)?;
        let value: serde_json::Value = serde_json::from_str(body).ok()?;
        if value["standard"] != EVENT_STANDARD || value["event"] != Self::NAME {
            return None;
        }
        Some(serde_json::from_value::<Nep297<Self>>(value).map(|e| {
            let [data] = e.data;
            data
        }))
    }

    /// The identity `respond` names this request by.
    pub fn signature_request(&self) -> SignatureRequest {
        SignatureRequest {
            tweak: self.tweak,
            payload: self.request.payload,
            domain_id: self.request.domain_id,
        }
    }

    /// The 32-byte yield (data) id.
    pub fn yield_id_bytes(&self) -> Option<[u8; 32]> {
        bs58::decode(&self.yield_id)
            .into_vec()
            .ok()?
            .try_into()
            .ok()
    }
}
