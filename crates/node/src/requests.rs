//! The sign requests this node has seen on chain and not yet seen answered, and which of them
//! it should lead now. Plain data, no I/O: the coordinator feeds it blocks, requests, peer
//! liveness and time.
//!
//! Who leads: the participants in the request's leader order ([`crate::leader`]), live ones
//! only. The first leads at once. A later one in that order steps in only when the request has
//! waited `takeover_after` per place ahead of it, so a leader that is up but stuck is covered
//! without every node signing every request. Requests drop out when answered, or when the
//! contract has timed them out.
//!
//! Under overload, requests are started oldest first (by the block they appeared in), so
//! none starves while later ones are answered; one too close to its timeout for a `respond`
//! to land in time is not started at all, so the stock goes to requests that can still be
//! answered.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chainsig_primitives::ParticipantId;

use crate::indexer::SeenRequest;
use crate::leader::{leader_order, request_id, RequestId};

/// NEAR's yield timeout: the contract fails a request this many blocks after it.
pub const YIELD_TIMEOUT_BLOCKS: u64 = 200;
/// Blocks a signature needs from its start until its `respond` executes: the run itself, the
/// transaction's block, and the block its receipt runs in, with one to spare.
pub const RESPOND_BLOCKS: u64 = 4;

#[derive(Debug, Clone)]
pub struct PendingRequest {
    pub seen: SeenRequest,
    pub since: Instant,
    /// A signing run this node leads is under way.
    pub signing: bool,
    /// Do not start another run before this (after a failed one).
    pub retry_at: Instant,
    pub attempts: u32,
}

#[derive(Debug, Default)]
pub struct RequestBook {
    pending: HashMap<RequestId, PendingRequest>,
}

impl RequestBook {
    /// Records a request; a duplicate of one already pending keeps the first sighting (the
    /// contract answers both with one response).
    pub fn insert(&mut self, seen: SeenRequest, now: Instant) -> bool {
        let id = request_id(&seen.request);
        if self.pending.contains_key(&id) {
            return false;
        }
        self.pending.insert(
            id,
            PendingRequest {
                seen,
                since: now,
                signing: false,
                retry_at: now,
                attempts: 0,
            },
        );
        true
    }

    pub fn get(&self, id: &RequestId) -> Option<&PendingRequest> {
        self.pending.get(id)
    }

    pub fn get_mut(&mut self, id: &RequestId) -> Option<&mut PendingRequest> {
        self.pending.get_mut(id)
    }

    pub fn remove(&mut self, id: &RequestId) -> Option<PendingRequest> {
        self.pending.remove(id)
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Drops requests the contract has already timed out at `height`; returns how many.
    pub fn expire(&mut self, height: u64) -> usize {
        let before = self.pending.len();
        self.pending
            .retain(|_, r| r.seen.height + YIELD_TIMEOUT_BLOCKS > height);
        before - self.pending.len()
    }

    /// Requests this node should start a signing run for now, oldest first. `alive` are
    /// those who can lead now (sorted); `height` is the chain's, as this node knows it.
    pub fn due(
        &self,
        me: ParticipantId,
        participants: &[ParticipantId],
        alive: &[ParticipantId],
        takeover_after: Duration,
        (height, now): (u64, Instant),
    ) -> Vec<RequestId> {
        let mut due: Vec<((u64, Instant), RequestId)> = self
            .pending
            .iter()
            .filter(|(_, r)| !r.signing && r.retry_at <= now)
            .filter(|(_, r)| height + RESPOND_BLOCKS < r.seen.height + YIELD_TIMEOUT_BLOCKS)
            .filter(|(id, r)| {
                let live_order: Vec<ParticipantId> = leader_order(participants, id)
                    .into_iter()
                    .filter(|p| alive.binary_search(p).is_ok())
                    .collect();
                live_order
                    .iter()
                    .position(|&p| p == me)
                    .is_some_and(|place| {
                        now.duration_since(r.since) >= takeover_after * place as u32
                    })
            })
            .map(|(id, r)| ((r.seen.height, r.since), *id))
            .collect();
        // Oldest first: they are closest to the contract's timeout.
        due.sort_unstable();
        due.into_iter().map(|(_, id)| id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chainsig_primitives::{derive_tweak, DomainId, EcdsaPayload, Payload, SignatureRequest};

    fn seen(n: u8, height: u64) -> SeenRequest {
        SeenRequest {
            request: SignatureRequest {
                tweak: derive_tweak("alice.near", &format!("p{n}")).unwrap(),
                payload: Payload::Ecdsa(EcdsaPayload::from_bytes([n + 1; 32]).unwrap()),
                domain_id: DomainId(0),
            },
            predecessor: "alice.near".into(),
            height,
            entropy: [n; 32],
        }
    }

    fn ids(list: &[u32]) -> Vec<ParticipantId> {
        list.iter().copied().map(ParticipantId).collect()
    }

    #[test]
    fn exactly_one_live_node_leads_each_fresh_request() {
        let all = ids(&[0, 1, 2]);
        let now = Instant::now();
        let mut book = RequestBook::default();
        for n in 0..30 {
            book.insert(seen(n, 10), now);
        }
        let take = Duration::from_secs(5);
        let total: usize = all
            .iter()
            .map(|&me| book.due(me, &all, &all, take, (10, now)).len())
            .sum();
        assert_eq!(total, 30);
        // With node 1 down, nodes 0 and 2 cover everything between them.
        let alive = ids(&[0, 2]);
        let total: usize = [0, 2]
            .iter()
            .map(|&me| {
                book.due(ParticipantId(me), &all, &alive, take, (10, now))
                    .len()
            })
            .sum();
        assert_eq!(total, 30);
    }

    #[test]
    fn a_stuck_leader_is_backed_up_after_the_takeover_delay() {
        let all = ids(&[0, 1, 2]);
        let start = Instant::now();
        let mut book = RequestBook::default();
        book.insert(seen(1, 10), start);
        let take = Duration::from_secs(5);
        let leaders: Vec<_> = all
            .iter()
            .filter(|&&me| !book.due(me, &all, &all, take, (10, start)).is_empty())
            .collect();
        assert_eq!(leaders.len(), 1);
        let later = start + take;
        let now_leading = all
            .iter()
            .filter(|&&me| !book.due(me, &all, &all, take, (10, later)).is_empty())
            .count();
        assert_eq!(now_leading, 2);
    }

    #[test]
    fn duplicates_keep_the_first_sighting_and_old_requests_expire() {
        let now = Instant::now();
        let mut book = RequestBook::default();
        assert!(book.insert(seen(1, 10), now));
        assert!(!book.insert(seen(1, 12), now));
        book.insert(seen(2, 50), now);
        assert_eq!(book.expire(209), 0);
        assert_eq!(book.expire(210), 1);
        assert_eq!(book.len(), 1);
    }

    #[test]
    fn the_oldest_request_goes_first_and_one_too_late_is_not_started() {
        let me = ids(&[0]);
        let now = Instant::now();
        let mut book = RequestBook::default();
        // The block a request appeared in decides, not when this node happened to see it.
        for (n, height) in [(1, 30), (2, 20), (3, 25)] {
            book.insert(seen(n, height), now);
        }
        let take = Duration::from_secs(5);
        let order = book.due(me[0], &me, &me, take, (40, now));
        let heights: Vec<u64> = order
            .iter()
            .map(|id| book.get(id).unwrap().seen.height)
            .collect();
        assert_eq!(heights, vec![20, 25, 30]);
        // At 216 a request from 20 times out at 220: too late to start; 25's is still in time.
        let heights: Vec<u64> = book
            .due(me[0], &me, &me, take, (216, now))
            .iter()
            .map(|id| book.get(id).unwrap().seen.height)
            .collect();
        assert_eq!(heights, vec![25, 30]);
    }
}
