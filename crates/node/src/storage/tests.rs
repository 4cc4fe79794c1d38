//! Damage: a file changed on disk, a wrong key, a record that does not open, a failure while
//! the node runs. None of them may panic or hand out wrong data.

use std::collections::BTreeMap;

use chainsig_mpc::keygen::{key_limits, keygen};
use chainsig_mpc::simulation::run_honest;
use chainsig_mpc::triples::deal_insecure;

use super::*;

/// redb's page size.
const PAGE: usize = 4096;

fn ids(n: u32) -> Vec<ParticipantId> {
    (0..n).map(ParticipantId).collect()
}

fn key_share() -> KeyShare {
    let participants = ids(3);
    let mut shares: BTreeMap<ParticipantId, KeyShare> = run_honest(
        participants
            .iter()
            .map(|&p| (p, keygen(&participants, p, 2, key_limits(3)).unwrap())),
    )
    .unwrap();
    shares.remove(&ParticipantId(0)).unwrap()
}

/// What a store was given, and the bytes of its file once closed.
struct Written {
    key: StorageKey,
    share: KeyShare,
    triples: Vec<(AssetId, Triple)>,
    bytes: Vec<u8>,
}

const ME: ParticipantId = ParticipantId(0);

/// A store as a node leaves it: a key share, five batches of triples, a checkpoint.
fn write_store(path: &Path) -> Written {
    let key = StorageKey::generate();
    let share = key_share();
    let triples: Vec<(AssetId, Triple)> = (0..40)
        .map(|id| (id, deal_insecure(&ids(3), 2).remove(&ME).unwrap()))
        .collect();
    {
        let store = Store::open(path, &key).unwrap();
        store.put_key_share(0, 0, &share).unwrap();
        for batch in triples.chunks(8) {
            store.put_triples(ME, batch).unwrap();
        }
        store.set_checkpoint("indexer", 42).unwrap();
    }
    Written {
        key,
        share,
        triples,
        bytes: std::fs::read(path).unwrap(),
    }
}

/// The store holds exactly what was written.
fn assert_holds(store: &Store, written: &Written) {
    assert_eq!(store.key_share(0).unwrap().as_ref(), Some(&written.share));
    assert_eq!(store.checkpoint("indexer").unwrap(), Some(42));
    let stored = store.triple_participants(ME, 2).unwrap();
    let expected: Vec<_> = written
        .triples
        .iter()
        .map(|(id, t)| (*id, t.participants.clone()))
        .collect();
    assert_eq!(stored, expected);
    let [a, b] = store.take_triples(ME, [0, 39]).unwrap();
    assert_eq!(a.big_a, written.triples[0].1.big_a);
    assert_eq!(b.big_a, written.triples[39].1.big_a);
}

fn flip(bytes: &mut [u8]) {
    for byte in bytes {
        *byte ^= 0x5a;
    }
}

#[test]
fn a_store_reopens_with_everything_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    let written = write_store(&path);
    assert_holds(&Store::open(&path, &written.key).unwrap(), &written);
}

/// 64 bytes overwritten in the middle of one page, for every page of the file that holds
/// anything (and a sample of the zeroed room the file keeps to grow) in turn: the open refuses
/// the file as damaged, or (a page nothing uses) the store holds all it held.
#[test]
fn a_damaged_page_anywhere_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    let written = write_store(&path);
    let pages = written.bytes.len() / PAGE;
    let written_to = |page: usize| {
        written.bytes[page * PAGE..(page + 1) * PAGE]
            .iter()
            .any(|&b| b != 0)
    };
    let mut refused = Vec::new();
    for page in (0..pages).filter(|&page| written_to(page) || page % 16 == 0) {
        let mut bytes = written.bytes.clone();
        let at = page * PAGE + PAGE / 2;
        flip(&mut bytes[at..at + 64]);
        std::fs::write(&path, &bytes).unwrap();
        match Store::open(&path, &written.key) {
            Ok(store) => assert_holds(&store, &written),
            Err(StorageError::Damaged(why)) => {
                assert!(
                    why.starts_with("redb found it corrupt"),
                    "page {page}: {why}"
                );
                refused.push(page);
            }
            Err(other) => panic!("page {page}: not reported as damage: {other}"),
        }
    }
    eprintln!("{} of {pages} pages refused: {refused:?}", refused.len());
    // The file is mostly room to grow; the pages in use are all caught.
    assert!(refused.len() >= 3, "refused pages {refused:?} of {pages}");
}

#[test]
fn a_file_overwritten_past_its_header_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    let written = write_store(&path);
    let mut bytes = written.bytes.clone();
    flip(&mut bytes[PAGE..]);
    std::fs::write(&path, &bytes).unwrap();
    let error = Store::open(&path, &written.key).err().expect("refused");
    assert!(matches!(error, StorageError::Damaged(_)), "{error}");
    assert!(error.is_damage());
}

/// The key check record tells a wrong key from damage: a wrong key is refused at open as
/// such; a record that does not open under the right key is damage.
#[test]
fn a_wrong_key_and_a_changed_record_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    let written = write_store(&path);
    let error = Store::open(&path, &StorageKey::generate())
        .err()
        .expect("a wrong key is refused");
    assert!(matches!(error, StorageError::WrongKey), "{error}");
    assert!(!error.is_damage());

    // Triple 3's ciphertext moved into triple 5's place, through redb (so every checksum
    // holds): it is sealed for another place and does not open there.
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(TRIPLES).unwrap();
            let moved = table.get((ME.0, 3)).unwrap().unwrap().value().to_vec();
            table.insert((ME.0, 5), moved.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = Store::open(&path, &written.key).unwrap();
    // A request that is merely wrong is not damage: storage goes on.
    assert!(matches!(
        store.take_triples(ME, [100, 101]),
        Err(StorageError::Missing { id: 100, .. })
    ));
    assert_eq!(store.checkpoint("indexer").unwrap(), Some(42));

    let error = store.take_triples(ME, [4, 5]).expect_err("damage");
    let StorageError::Damaged(why) = &error else {
        panic!("{error}")
    };
    assert!(
        why.contains("triple 5 of participant #0 does not decrypt"),
        "{why}"
    );
    // From now on the store refuses everything, and says so to whoever waits for it.
    assert!(matches!(
        store.checkpoint("indexer"),
        Err(StorageError::Damaged(_))
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let reported = runtime.block_on(store.damaged());
    assert_eq!(reported.to_string(), error.to_string());
    drop(store);
    // Nothing was taken by the failed call.
    let store = Store::open(&path, &written.key).unwrap();
    assert_eq!(store.triple_ids(ME, 100).unwrap().len(), 40);
}

#[test]
fn a_panic_inside_an_operation_is_damage_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("node.redb"), &StorageKey::generate()).unwrap();
    let result: Result<(), _> =
        store.guarded(|| panic!("internal error: entered unreachable code"));
    let error = result.expect_err("an error");
    assert!(
        matches!(&error, StorageError::Damaged(why) if why.contains("entered unreachable code")),
        "{error}"
    );
    assert!(matches!(
        store.set_checkpoint("indexer", 1),
        Err(StorageError::Damaged(_))
    ));
}

#[test]
fn a_file_that_cannot_be_opened_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    std::fs::create_dir(&path).unwrap();
    let error = Store::open(&path, &StorageKey::generate())
        .err()
        .expect("a directory is not a database");
    assert!(matches!(error, StorageError::Io(_)), "{error}");
}

#[test]
fn something_that_is_not_a_database_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    std::fs::write(&path, vec![7u8; 3 * PAGE]).unwrap();
    let error = Store::open(&path, &StorageKey::generate())
        .err()
        .expect("refused");
    assert!(
        matches!(&error, StorageError::Damaged(why) if why.contains("Not a redb database")),
        "{error}"
    );
}
