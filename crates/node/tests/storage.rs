//! The store as the node uses it: encrypted at rest, use-once, durable across reopening.

use std::collections::BTreeMap;

use chainsig_mpc::keygen::key_limits;
use chainsig_mpc::presign::presign_limits;
use chainsig_mpc::simulation::run_honest;
use chainsig_mpc::triples::deal_insecure;
use chainsig_mpc::{keygen, presign, KeyShare, ParticipantId, Presignature, Triple};
use chainsig_node::storage::{Pruned, StorageError, StorageKey, Store, TripleRule};

fn ids(n: u32) -> Vec<ParticipantId> {
    (0..n).map(ParticipantId).collect()
}

fn keys() -> BTreeMap<ParticipantId, KeyShare> {
    let participants = ids(3);
    run_honest(
        participants
            .iter()
            .map(|&p| (p, keygen(&participants, p, 2, key_limits(3)).unwrap())),
    )
    .unwrap()
}

/// Participant 0's shares of `count` dealt triples.
fn my_triples(count: usize) -> Vec<Triple> {
    (0..count)
        .map(|_| deal_insecure(&ids(3), 2).remove(&ParticipantId(0)).unwrap())
        .collect()
}

fn presignatures(
    keys: &BTreeMap<ParticipantId, KeyShare>,
) -> BTreeMap<ParticipantId, Presignature> {
    let participants = ids(3);
    let (mut a, mut b) = (
        deal_insecure(&participants, 2),
        deal_insecure(&participants, 2),
    );
    run_honest(participants.iter().map(|&p| {
        (
            p,
            presign(
                &participants,
                &keys[&p],
                a.remove(&p).unwrap(),
                b.remove(&p).unwrap(),
                presign_limits(),
            )
            .unwrap(),
        )
    }))
    .unwrap()
}

#[test]
fn key_shares_survive_reopening_and_stay_secret_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    let key = StorageKey::generate();
    let share = keys().remove(&ParticipantId(0)).unwrap();
    {
        let store = Store::open(&path, &key).unwrap();
        store.put_key_share(1, 0, &share).unwrap();
        store.put_key_share(3, 0, &share).unwrap();
        // A later attempt of the same key event replaces the share.
        store.put_key_share(3, 2, &share).unwrap();
    }
    let store = Store::open(&path, &key).unwrap();
    assert_eq!(store.key_share(1).unwrap().as_ref(), Some(&share));
    assert_eq!(store.key_share(2).unwrap(), None);
    assert_eq!(store.latest_key_share().unwrap().map(|(e, _)| e), Some(3));
    assert_eq!(store.key_share_attempt(3).unwrap(), Some(2));
    assert_eq!(store.key_share_attempt(1).unwrap(), Some(0));
    assert_eq!(store.key_share_attempt(2).unwrap(), None);
    assert_eq!(store.key_share_epochs().unwrap(), vec![1, 3]);

    // Presignatures made with a share go when a later attempt replaces it.
    let mut made = presignatures(&keys());
    store
        .put_presignature(
            3,
            ParticipantId(1),
            40,
            &made.remove(&ParticipantId(0)).unwrap(),
        )
        .unwrap();
    store.put_key_share(3, 2, &share).unwrap();
    assert_eq!(
        store.presignature_ids(ParticipantId(1), 5).unwrap(),
        vec![40]
    );
    store.put_key_share(3, 3, &share).unwrap();
    assert!(store
        .presignature_ids(ParticipantId(1), 5)
        .unwrap()
        .is_empty());
    drop(store);

    // The secret share's bytes appear nowhere in the file, in any encoding we write.
    let raw = std::fs::read(&path).unwrap();
    let secret: [u8; 32] = share.private_share().to_bytes().into();
    let secret_hex = hex::encode_upper(secret);
    assert!(!raw.windows(32).any(|w| w == secret));
    assert!(!raw
        .windows(secret_hex.len())
        .any(|w| w == secret_hex.as_bytes()));
}

#[test]
fn another_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    Store::open(&path, &StorageKey::generate()).unwrap();
    let error = Store::open(&path, &StorageKey::generate())
        .err()
        .expect("wrong key refused");
    assert!(matches!(error, StorageError::WrongKey), "{error}");
}

#[test]
fn a_store_in_use_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    let key = StorageKey::generate();
    let _open = Store::open(&path, &key).unwrap();
    let error = Store::open(&path, &key).err().expect("the lock is held");
    assert!(matches!(error, StorageError::InUse), "{error}");
    assert!(error.to_string().contains("already running"), "{error}");
}

#[test]
fn bad_key_text_is_a_clear_error() {
    for text in ["", "abc", &"zz".repeat(32), &"00".repeat(31)] {
        let error = StorageKey::from_hex(text).unwrap_err();
        assert!(error.to_string().contains("64 hex characters"), "{error}");
    }
    let key = StorageKey::from_hex(&format!("  {}\n", "ab".repeat(32))).unwrap();
    assert_eq!(format!("{key:?}"), "StorageKey(<redacted>)");
}

#[test]
fn a_triple_is_taken_once_even_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    let key = StorageKey::generate();
    let me = ParticipantId(0);
    let triples: Vec<(u64, Triple)> = my_triples(3)
        .into_iter()
        .enumerate()
        .map(|(i, t)| (i as u64 + 10, t))
        .collect();
    let first_a = triples[0].1.big_a;
    {
        let store = Store::open(&path, &key).unwrap();
        store.put_triples(me, &triples).unwrap();
        assert_eq!(store.triple_ids(me, 10).unwrap(), vec![10, 11, 12]);
        assert_eq!(
            store.triple_ids(ParticipantId(1), 10).unwrap(),
            Vec::<u64>::new()
        );
        let [a, _b] = store.take_triples(me, [10, 11]).unwrap();
        assert_eq!(a.big_a, first_a);
    }
    // As if the node crashed right after taking them: they do not come back.
    let store = Store::open(&path, &key).unwrap();
    assert_eq!(store.triple_ids(me, 10).unwrap(), vec![12]);
    let error = store.take_triples(me, [10, 12]).err().unwrap();
    assert!(
        matches!(error, StorageError::Missing { id: 10, .. }),
        "{error}"
    );
    // All or nothing: the failed take left triple 12 in place.
    assert_eq!(store.triple_ids(me, 10).unwrap(), vec![12]);
    // Ids are never overwritten.
    let again = vec![(12, my_triples(1).pop().unwrap())];
    assert!(matches!(
        store.put_triples(me, &again),
        Err(StorageError::AlreadyExists { id: 12, .. })
    ));
}

#[test]
fn a_presignature_is_taken_once_and_only_in_its_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("node.redb"), &StorageKey::generate()).unwrap();
    let keys = keys();
    let mut presignatures = presignatures(&keys);
    let owner = ParticipantId(2);
    let mine = presignatures.remove(&ParticipantId(0)).unwrap();
    let big_r = mine.big_r;
    store.put_presignature(4, owner, 7, &mine).unwrap();
    assert_eq!(store.presignature_ids(owner, 5).unwrap(), vec![7]);
    assert_eq!(
        store.presignature_participants(4, owner).unwrap(),
        vec![(7, ids(3))]
    );
    assert!(store
        .presignature_participants(5, owner)
        .unwrap()
        .is_empty());
    // Another epoch's signature cannot have it, and does not use it up.
    assert!(matches!(
        store.take_presignature(5, owner, 7),
        Err(StorageError::WrongEpoch {
            stored: 4,
            wanted: 5,
            ..
        })
    ));
    assert_eq!(store.take_presignature(4, owner, 7).unwrap().big_r, big_r);
    assert!(matches!(
        store.take_presignature(4, owner, 7),
        Err(StorageError::Missing { .. })
    ));
}

#[test]
fn an_epoch_change_keeps_the_new_share_and_the_triples_of_members_who_stay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    let key = StorageKey::generate();
    let store = Store::open(&path, &key).unwrap();
    let share = keys().remove(&ParticipantId(0)).unwrap();
    let me = ParticipantId(0);
    // Triples among {0,1,2}, threshold 2; one dealt among {0,1} only.
    let kept: Vec<(u64, Triple)> = my_triples(2)
        .into_iter()
        .enumerate()
        .map(|(i, t)| (i as u64, t))
        .collect();
    store.put_triples(me, &kept).unwrap();
    let pair = deal_insecure(&[ParticipantId(0), ParticipantId(1)], 2)
        .remove(&me)
        .unwrap();
    store.put_triples(ParticipantId(1), &[(9, pair)]).unwrap();
    let mut presignatures = presignatures(&keys());
    store
        .put_presignature(0, me, 20, &presignatures.remove(&me).unwrap())
        .unwrap();
    store
        .put_presignature(1, me, 21, &presignatures.remove(&ParticipantId(1)).unwrap())
        .unwrap();
    store.put_key_share(0, 0, &share).unwrap();

    // The old share must not go before the new one is stored.
    let members = [ParticipantId(0), ParticipantId(1), ParticipantId(3)];
    let rule = TripleRule {
        members: &members,
        threshold: 2,
    };
    assert!(store.prune_to_epoch(1, &rule).is_err());
    assert_eq!(store.key_share_epochs().unwrap(), vec![0]);

    // Member 2 left and 3 joined: the triples shared with 2 go, the one among {0,1} stays;
    // epoch 0's share and presignature go.
    store.put_key_share(1, 0, &share).unwrap();
    let pruned = store.prune_to_epoch(1, &rule).unwrap();
    assert_eq!(
        pruned,
        Pruned {
            key_shares: 1,
            presignatures: 1,
            triples: 2
        }
    );
    assert_eq!(store.key_share_epochs().unwrap(), vec![1]);
    assert!(store.triple_ids(me, 10).unwrap().is_empty());
    assert_eq!(store.triple_ids(ParticipantId(1), 10).unwrap(), vec![9]);
    assert_eq!(
        store.presignature_ids(me, 10).unwrap(),
        vec![21],
        "epoch 1's stays"
    );
    // Again: nothing more to do.
    assert!(store.prune_to_epoch(1, &rule).unwrap().is_empty());
    drop(store);

    // And it stays so; leaving the network removes the rest.
    let store = Store::open(&path, &key).unwrap();
    assert_eq!(store.key_share_epochs().unwrap(), vec![1]);
    let pruned = store.forget_key_material().unwrap();
    assert_eq!(
        (pruned.key_shares, pruned.triples, pruned.presignatures),
        (1, 1, 1)
    );
    assert!(store.key_share_epochs().unwrap().is_empty());
}

#[test]
fn checkpoints_persist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    let key = StorageKey::generate();
    {
        let store = Store::open(&path, &key).unwrap();
        assert_eq!(store.checkpoint("indexer").unwrap(), None);
        store.set_checkpoint("indexer", 42).unwrap();
    }
    assert_eq!(
        Store::open(&path, &key)
            .unwrap()
            .checkpoint("indexer")
            .unwrap(),
        Some(42)
    );
}

#[test]
fn a_corrupt_file_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    std::fs::write(&path, b"this is not a redb file at all, just some bytes").unwrap();
    assert!(Store::open(&path, &StorageKey::generate()).is_err());
}
