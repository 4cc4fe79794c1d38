//! The owner's view of its own triples and presignatures: which ids it has and who shares
//! each, so it can pick assets whose participants are all up without opening the store. The
//! store stays the authority on use-once (it removes an asset before handing it out); this
//! index only decides what to ask for.
//!
//! Ids come from a counter persisted *before* they are used, so an id is never announced
//! twice, even across a crash.

use std::collections::BTreeMap;

use chainsig_primitives::ParticipantId;

use crate::storage::{AssetId, StorageError, Store};

const NEXT_ID_CHECKPOINT: &str = "next_asset_id";

type Index = BTreeMap<AssetId, Vec<ParticipantId>>;

pub struct OwnedAssets {
    me: ParticipantId,
    triples: Index,
    presignatures: Index,
    /// Presignatures of the epoch a reshare under way switches to, made with this node's new
    /// share before the switch, so that the new epoch starts with stock.
    upcoming: Option<(u64, Index)>,
    next_id: AssetId,
    /// Rotates partner sets so the work (and the risk of one peer being down)
    /// spreads over all peers.
    rotation: usize,
}

fn all_in(set: &[ParticipantId], alive: &[ParticipantId]) -> bool {
    set.iter().all(|p| alive.binary_search(p).is_ok())
}

impl OwnedAssets {
    /// Rebuilds the index from the store for `epoch`: its presignatures, and the triples
    /// whose participants are all `members` (sorted) and made with `threshold`, which
    /// survive from the epoch before (triples do not depend on the key).
    pub fn load(
        store: &Store,
        me: ParticipantId,
        epoch: u64,
        members: &[ParticipantId],
        threshold: usize,
    ) -> Result<Self, StorageError> {
        let triples = store
            .triple_participants(me, threshold)?
            .into_iter()
            .filter(|(_, set)| all_in(set, members))
            .collect();
        Ok(Self {
            me,
            triples,
            presignatures: store
                .presignature_participants(epoch, me)?
                .into_iter()
                .collect(),
            upcoming: None,
            next_id: store.checkpoint(NEXT_ID_CHECKPOINT)?.unwrap_or(0),
            rotation: 0,
        })
    }

    /// Starts (or keeps) the index of `epoch`'s presignatures, from the store; `None` ends it.
    pub fn track_upcoming(
        &mut self,
        store: &Store,
        epoch: Option<u64>,
    ) -> Result<(), StorageError> {
        match epoch {
            None => self.upcoming = None,
            Some(epoch) if self.upcoming.as_ref().is_some_and(|(e, _)| *e == epoch) => {}
            Some(epoch) => {
                let index = store
                    .presignature_participants(epoch, self.me)?
                    .into_iter()
                    .collect();
                self.upcoming = Some((epoch, index));
            }
        }
        Ok(())
    }

    /// Records a presignature of the upcoming epoch; false if that is not `epoch`.
    pub fn add_upcoming_presignature(
        &mut self,
        epoch: u64,
        id: AssetId,
        participants: &[ParticipantId],
    ) -> bool {
        match &mut self.upcoming {
            Some((upcoming, index)) if *upcoming == epoch => {
                index.insert(id, participants.to_vec());
                true
            }
            _ => false,
        }
    }

    /// Upcoming presignatures whose participants are all up.
    pub fn usable_upcoming(&self, alive: &[ParticipantId]) -> usize {
        self.upcoming.as_ref().map_or(0, |(_, index)| {
            index.values().filter(|set| all_in(set, alive)).count()
        })
    }

    /// Reserves `count` fresh ids; the counter is on disk before they are returned.
    pub fn allocate(&mut self, store: &Store, count: u64) -> Result<AssetId, StorageError> {
        let first = self.next_id;
        store.set_checkpoint(NEXT_ID_CHECKPOINT, first + count)?;
        self.next_id = first + count;
        Ok(first)
    }

    pub fn add_triples(&mut self, first_id: AssetId, count: u64, participants: &[ParticipantId]) {
        for id in first_id..first_id + count {
            self.triples.insert(id, participants.to_vec());
        }
    }

    pub fn add_presignature(&mut self, id: AssetId, participants: &[ParticipantId]) {
        self.presignatures.insert(id, participants.to_vec());
    }

    /// A set for new work: this node and `threshold - 1` live peers, rotating so the work
    /// (and the risk of one peer going down) spreads over all peers. `alive` is sorted and
    /// includes this node.
    pub fn partner_set(
        &mut self,
        alive: &[ParticipantId],
        threshold: usize,
    ) -> Option<Vec<ParticipantId>> {
        let peers: Vec<ParticipantId> = alive.iter().copied().filter(|&p| p != self.me).collect();
        // The threshold comes from the contract; a zero there must not wrap below.
        if threshold == 0 || peers.len() + 1 < threshold {
            return None;
        }
        let mut set = vec![self.me];
        for i in 0..threshold - 1 {
            set.push(peers[(self.rotation + i) % peers.len()]);
        }
        self.rotation = self.rotation.wrapping_add(1);
        set.sort_unstable();
        Some(set)
    }

    /// Triples usable now: everyone who shares them is up.
    pub fn usable_triples(&self, alive: &[ParticipantId]) -> usize {
        self.triples
            .values()
            .filter(|set| all_in(set, alive))
            .count()
    }

    /// Presignatures usable now: every participant up.
    pub fn usable_presignatures(&self, alive: &[ParticipantId]) -> usize {
        self.presignatures
            .values()
            .filter(|set| all_in(set, alive))
            .count()
    }

    pub fn counts(&self) -> (usize, usize) {
        (self.triples.len(), self.presignatures.len())
    }

    /// Two triples shared by the same live set, for a presignature among that set, those
    /// shared with one of `doomed` (members about to leave) first. They leave the index.
    pub fn pick_triples(
        &mut self,
        alive: &[ParticipantId],
        doomed: &[ParticipantId],
    ) -> Option<([AssetId; 2], Vec<ParticipantId>)> {
        let with_doomed = |set: &Vec<ParticipantId>| set.iter().any(|p| doomed.contains(p));
        let mut usable: Vec<(&AssetId, &Vec<ParticipantId>)> = self
            .triples
            .iter()
            .filter(|(_, set)| all_in(set, alive))
            .collect();
        usable.sort_by_key(|(_, set)| !with_doomed(set));
        let mut usable = usable.into_iter();
        let (first, second, set) = loop {
            let (&first, set) = usable.next()?;
            let twin = self
                .triples
                .range(first + 1..)
                .find(|(_, other)| *other == set)
                .map(|(&id, _)| id);
            if let Some(second) = twin {
                break (first, second, set.clone());
            }
        };
        self.triples.remove(&first);
        self.triples.remove(&second);
        Some(([first, second], set))
    }

    /// A presignature whose participants are all up; it leaves the index.
    pub fn pick_presignature(
        &mut self,
        alive: &[ParticipantId],
    ) -> Option<(AssetId, Vec<ParticipantId>)> {
        let id = *self
            .presignatures
            .iter()
            .find(|(_, set)| all_in(set, alive))?
            .0;
        self.presignatures.remove_entry(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[u32]) -> Vec<ParticipantId> {
        list.iter().copied().map(ParticipantId).collect()
    }

    fn index() -> OwnedAssets {
        OwnedAssets {
            me: ParticipantId(0),
            triples: Index::new(),
            presignatures: Index::new(),
            upcoming: None,
            next_id: 0,
            rotation: 0,
        }
    }

    #[test]
    fn partner_sets_rotate_over_live_peers() {
        let mut assets = index();
        let alive = ids(&[0, 1, 2]);
        let first = assets.partner_set(&alive, 2).unwrap();
        let second = assets.partner_set(&alive, 2).unwrap();
        assert_ne!(first, second);
        assert!(first.contains(&ParticipantId(0)) && second.contains(&ParticipantId(0)));
        assert_eq!(assets.partner_set(&ids(&[0, 2]), 2), Some(ids(&[0, 2])));
        assert_eq!(assets.partner_set(&ids(&[0]), 2), None);
        assert_eq!(assets.partner_set(&alive, 0), None);
    }

    #[test]
    fn triples_pair_within_one_live_set() {
        let mut assets = index();
        assets.add_triples(0, 1, &ids(&[0, 1]));
        assets.add_triples(1, 2, &ids(&[0, 2]));
        assets.add_triples(3, 1, &ids(&[0, 1]));
        let alive = ids(&[0, 1, 2]);
        assert_eq!(
            assets.pick_triples(&alive, &[]),
            Some(([0, 3], ids(&[0, 1])))
        );
        assert_eq!(
            assets.pick_triples(&alive, &[]),
            Some(([1, 2], ids(&[0, 2])))
        );
        assert_eq!(assets.pick_triples(&alive, &[]), None);
        assets.add_triples(4, 2, &ids(&[0, 1]));
        assert_eq!(assets.usable_triples(&ids(&[0, 2])), 0, "1 is down");
        assert_eq!(assets.pick_triples(&ids(&[0, 2]), &[]), None);
    }

    #[test]
    fn triples_of_a_leaving_member_are_used_first() {
        let mut assets = index();
        assets.add_triples(0, 2, &ids(&[0, 1]));
        assets.add_triples(2, 2, &ids(&[0, 2]));
        let alive = ids(&[0, 1, 2]);
        let leaving = ids(&[2]);
        assert_eq!(
            assets.pick_triples(&alive, &leaving),
            Some(([2, 3], ids(&[0, 2])))
        );
        assert_eq!(
            assets.pick_triples(&alive, &leaving),
            Some(([0, 1], ids(&[0, 1])))
        );
    }

    #[test]
    fn only_presignatures_with_everyone_up_are_picked() {
        let mut assets = index();
        assets.add_presignature(5, &ids(&[0, 1]));
        assets.add_presignature(6, &ids(&[0, 2]));
        let alive = ids(&[0, 2]);
        assert_eq!(assets.usable_presignatures(&alive), 1);
        assert_eq!(assets.pick_presignature(&alive), Some((6, ids(&[0, 2]))));
        assert_eq!(assets.pick_presignature(&alive), None);
        assert_eq!(assets.counts(), (0, 1));
    }
}
