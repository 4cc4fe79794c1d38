//! Who leads a sign request. Every node computes the same order for a request without
//! talking: participants sorted by `SHA-256(domain ‖ participant id ‖ request id)`. The first
//! one that is alive leads; if it fails, the next alive one takes over. Hashing spreads the
//! leader role evenly over participants and requests.

use chainsig_primitives::{ParticipantId, SignatureRequest};
use sha2::{Digest, Sha256};

const REQUEST_ID_DOMAIN: &[u8] = b"chainsig/v1/request-id";
const LEADER_ORDER_DOMAIN: &[u8] = b"chainsig/v1/leader-order";

/// Identifies a request across nodes: the hash of what the contract keys it by (tweak,
/// payload, domain), so identical requests share one id, as they share one response.
pub type RequestId = [u8; 32];

pub fn request_id(request: &SignatureRequest) -> RequestId {
    Sha256::new()
        .chain_update(REQUEST_ID_DOMAIN)
        .chain_update(request.tweak.to_bytes())
        .chain_update(request.payload.as_bytes())
        .chain_update(request.domain_id.0.to_be_bytes())
        .finalize()
        .into()
}

fn rank(participant: ParticipantId, request: &RequestId) -> [u8; 32] {
    Sha256::new()
        .chain_update(LEADER_ORDER_DOMAIN)
        .chain_update(participant.to_be_bytes())
        .chain_update(request)
        .finalize()
        .into()
}

/// The participants in the order in which they lead `request`.
pub fn leader_order(participants: &[ParticipantId], request: &RequestId) -> Vec<ParticipantId> {
    let mut ranked: Vec<_> = participants
        .iter()
        .map(|&p| (rank(p, request), p))
        .collect();
    ranked.sort_unstable();
    ranked.dedup_by_key(|(_, p)| *p);
    ranked.into_iter().map(|(_, p)| p).collect()
}

/// The first participant in the order that `is_alive` accepts.
pub fn leader(
    participants: &[ParticipantId],
    request: &RequestId,
    is_alive: impl Fn(ParticipantId) -> bool,
) -> Option<ParticipantId> {
    leader_order(participants, request)
        .into_iter()
        .find(|&p| is_alive(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chainsig_primitives::{derive_tweak, DomainId, EcdsaPayload, Payload};
    use proptest::prelude::*;

    fn ids(n: u32) -> Vec<ParticipantId> {
        (0..n).map(ParticipantId).collect()
    }

    fn request(n: u8, path: &str) -> SignatureRequest {
        SignatureRequest {
            tweak: derive_tweak("alice.near", path).unwrap(),
            payload: Payload::Ecdsa(EcdsaPayload::from_bytes([n; 32]).unwrap()),
            domain_id: DomainId(0),
        }
    }

    #[test]
    fn identical_requests_share_an_id_and_different_ones_do_not() {
        assert_eq!(request_id(&request(1, "a")), request_id(&request(1, "a")));
        assert_ne!(request_id(&request(1, "a")), request_id(&request(2, "a")));
        assert_ne!(request_id(&request(1, "a")), request_id(&request(1, "b")));
    }

    #[test]
    fn the_next_alive_participant_takes_over() {
        let participants = ids(5);
        let id = request_id(&request(3, "x"));
        let order = leader_order(&participants, &id);
        assert_eq!(leader(&participants, &id, |_| true), Some(order[0]));
        assert_eq!(
            leader(&participants, &id, |p| p != order[0]),
            Some(order[1])
        );
        assert_eq!(leader(&participants, &id, |_| false), None);
    }

    #[test]
    fn leadership_is_spread_evenly() {
        let participants = ids(4);
        let mut counts = [0usize; 4];
        for i in 0..2000u32 {
            let id = request_id(&request((i % 200) as u8, &i.to_string()));
            counts[leader(&participants, &id, |_| true).unwrap().0 as usize] += 1;
        }
        // 500 expected each; 400..600 is over four standard deviations wide.
        assert!(
            counts.iter().all(|&c| (400..600).contains(&c)),
            "{counts:?}"
        );
    }

    proptest! {
        #[test]
        fn the_order_is_a_permutation_every_node_agrees_on(
            set in proptest::collection::btree_set(0u32..1000, 1..20),
            id in any::<[u8; 32]>(),
        ) {
            let participants: Vec<ParticipantId> = set.iter().copied().map(ParticipantId).collect();
            let order = leader_order(&participants, &id);
            let mut sorted = order.clone();
            sorted.sort();
            prop_assert_eq!(&sorted, &participants);
            let mut reversed = participants.clone();
            reversed.reverse();
            prop_assert_eq!(leader_order(&reversed, &id), order);
        }
    }
}
