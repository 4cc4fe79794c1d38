//! NEP-297 events the contract logs, one `EVENT_JSON:` line each, so an indexer can find
//! requests in receipts' logs without reading the contract's state.

use chainsig_primitives::SignRequest;
use near_sdk::{env, AccountId, NearToken};
use serde::Serialize;

pub const EVENT_STANDARD: &str = "chainsig";
pub const EVENT_VERSION: &str = "1.0.0";

#[derive(Serialize)]
struct Nep297<'a, T: Serialize> {
    standard: &'static str,
    version: &'static str,
    event: &'static str,
    data: [&'a T; 1],
}

/// The whole log line of an event: `EVENT_JSON:{"standard":"chainsig","version":"1.0.0",
/// "event":…,"data":[…]}`.
pub fn event_line<T: Serialize>(event: &'static str, data: &T) -> String {
    let body = serde_json::to_string(&Nep297 {
        standard: EVENT_STANDARD,
        version: EVENT_VERSION,
        event,
        data: [data],
    })
    .unwrap_or_else(|_| env::abort());
    format!("EVENT_JSON:{body}")
}

/// `sign_request`: a `sign` call is waiting for a signature.
///
/// `data[0]` is `{"predecessor":"<account>","request":{"path":…,"payload_v2":{"Ecdsa":"<hex>"},
/// "domain_id":0},"tweak":"<64 hex>","yield_id":"<base58 of the 32-byte data id>",
/// "nonce":<u64>,"deposit":"<yoctoNEAR>"}`. The request is always in the current form, whichever
/// form the caller sent. `respond` names the request as
/// `{"tweak":…,"payload":{"Ecdsa":…},"domain_id":…}`.
#[derive(Serialize)]
pub struct SignRequestEvent<'a> {
    pub predecessor: &'a AccountId,
    pub request: &'a SignRequest,
    pub tweak: String,
    pub yield_id: String,
    pub nonce: u64,
    pub deposit: NearToken,
}

impl SignRequestEvent<'_> {
    pub const NAME: &'static str = "sign_request";

    pub fn emit(&self) {
        env::log_str(&event_line(Self::NAME, self));
    }
}
