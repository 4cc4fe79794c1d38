//! The engine's cost per party, next to raw `cait-sith` doing the same work.
//!
//! Run: `cargo bench -p chainsig-mpc --bench engine` (prints a Markdown table).
//!
//! Every party runs in this one thread; a party's cost is this thread's CPU time inside its
//! calls (so other processes on the machine do not count). Keygen and reshare run among all n participants; triples, presignatures and
//! signatures among the t participants that sign. Each figure is the median over several
//! runs of the mean over parties. Bytes count a broadcast once per recipient.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use cpu_time::ThreadTime;

use cait_sith::protocol::{Action, Participant, Protocol as CsProtocol};
use cait_sith::{KeygenOutput, PresignArguments};
use chainsig_mpc::keygen::key_limits;
use chainsig_mpc::presign::presign_limits;
use chainsig_mpc::sign::sign_limits;
use chainsig_mpc::simulation::Simulation;
use chainsig_mpc::triples::{deal_insecure, triple_limits};
use chainsig_mpc::{
    generate_triple, generate_triples, keygen, presign, reshare, sign, KeyShare, ParticipantId,
    Protocol, SignArgs,
};
use chainsig_primitives::{derive_tweak, EcdsaPayload};
use k256::Secp256k1;

const CONFIGS: [(u32, usize); 4] = [(3, 2), (5, 3), (8, 6), (10, 7)];
const BATCH: usize = 8;

#[derive(Clone, Copy)]
struct Cost {
    cpu: Duration,
    bytes: f64,
}

fn median(mut costs: Vec<Cost>) -> Cost {
    costs.sort_by_key(|c| c.cpu);
    costs[costs.len() / 2]
}

fn ids(range: impl IntoIterator<Item = u32>) -> Vec<ParticipantId> {
    range.into_iter().map(ParticipantId).collect()
}

fn cs(ids: &[ParticipantId]) -> Vec<Participant> {
    ids.iter().map(|p| Participant::from(p.0)).collect()
}

/// Runs our protocol with the simulator; returns the per-party cost and the outputs.
fn ours<P: Protocol>(
    parties: Vec<(ParticipantId, P)>,
) -> (Cost, BTreeMap<ParticipantId, P::Output>) {
    let count = parties.len() as u32;
    let report = Simulation::new(parties, 0).run();
    let cpu: Duration = report.stats.values().map(|s| s.cpu).sum();
    let bytes: u64 = report.stats.values().map(|s| s.bytes_sent).sum();
    let outputs = report
        .into_result()
        .unwrap_or_else(|(p, e)| panic!("{p}: {e}"));
    (
        Cost {
            cpu: cpu / count,
            bytes: bytes as f64 / f64::from(count),
        },
        outputs,
    )
}

type Raw<T> = Box<dyn CsProtocol<Output = T>>;

/// Runs raw `cait-sith` parties with the same delivery pattern as the simulator (one
/// message in, then poke until it waits), timing each party's calls.
fn raw<T>(mut parties: Vec<(Participant, Raw<T>)>) -> (Cost, Vec<T>) {
    let n = parties.len();
    let index: BTreeMap<Participant, usize> = parties
        .iter()
        .enumerate()
        .map(|(i, (p, _))| (*p, i))
        .collect();
    let mut queue: VecDeque<(usize, Participant, Vec<u8>)> = VecDeque::new();
    let mut outputs: Vec<Option<T>> = (0..n).map(|_| None).collect();
    let mut cpu = Duration::ZERO;
    let mut bytes = 0usize;
    let mut drive = |i: usize,
                     delivery: Option<(Participant, Vec<u8>)>,
                     queue: &mut VecDeque<_>,
                     outputs: &mut Vec<Option<T>>| {
        if outputs[i].is_some() {
            return;
        }
        let started = ThreadTime::now();
        if let Some((from, message)) = delivery {
            parties[i].1.message(from, message);
        }
        let mut sends = Vec::new();
        loop {
            match parties[i].1.poke().expect("raw protocol runs") {
                Action::Wait => break,
                Action::SendMany(m) => sends.push((None, m)),
                Action::SendPrivate(to, m) => sends.push((Some(to), m)),
                Action::Return(out) => {
                    outputs[i] = Some(out);
                    break;
                }
            }
        }
        cpu += started.elapsed();
        let me = parties[i].0;
        for (to, message) in sends {
            let targets: Vec<usize> = match to {
                None => (0..n).filter(|&j| j != i).collect(),
                Some(p) => vec![index[&p]],
            };
            for j in targets {
                bytes += message.len();
                queue.push_back((j, me, message.clone()));
            }
        }
    };
    for i in 0..n {
        drive(i, None, &mut queue, &mut outputs);
    }
    while let Some((to, from, message)) = queue.pop_front() {
        drive(to, Some((from, message)), &mut queue, &mut outputs);
    }
    let cost = Cost {
        cpu: cpu / n as u32,
        bytes: bytes as f64 / n as f64,
    };
    (
        cost,
        outputs
            .into_iter()
            .map(|o| o.expect("every raw party finished"))
            .collect(),
    )
}

fn keygen_ours(all: &[ParticipantId], t: usize) -> (Cost, BTreeMap<ParticipantId, KeyShare>) {
    ours(
        all.iter()
            .map(|&p| (p, keygen(all, p, t, key_limits(all.len())).unwrap()))
            .collect(),
    )
}

fn keygen_raw(all: &[ParticipantId], t: usize) -> Cost {
    let list = cs(all);
    raw(list
        .iter()
        .map(|&p| {
            let protocol: Raw<KeygenOutput<Secp256k1>> =
                Box::new(cait_sith::keygen(&list, p, t).unwrap());
            (p, protocol)
        })
        .collect())
    .0
}

fn reshare_ours(
    old: &[ParticipantId],
    new: &[ParticipantId],
    t: usize,
    keys: &BTreeMap<ParticipantId, KeyShare>,
) -> Cost {
    let pk = keys[&old[0]].public_key;
    ours(
        new.iter()
            .map(|&p| {
                (
                    p,
                    reshare(old, t, new, t, p, keys.get(&p), pk, key_limits(new.len())).unwrap(),
                )
            })
            .collect(),
    )
    .0
}

fn reshare_raw(
    old: &[ParticipantId],
    new: &[ParticipantId],
    t: usize,
    keys: &BTreeMap<ParticipantId, KeyShare>,
) -> Cost {
    let pk = keys[&old[0]].public_key;
    let (old_cs, new_cs) = (cs(old), cs(new));
    raw(new
        .iter()
        .map(|&p| {
            let share = keys.get(&p).map(|k| *k.private_share());
            let protocol: Raw<k256::Scalar> = Box::new(
                cait_sith::reshare::<Secp256k1>(
                    &old_cs,
                    t,
                    &new_cs,
                    t,
                    Participant::from(p.0),
                    share,
                    pk,
                )
                .unwrap(),
            );
            (Participant::from(p.0), protocol)
        })
        .collect())
    .0
}

fn triple_ours(signers: &[ParticipantId], t: usize) -> Cost {
    let limits = triple_limits(signers.len());
    ours(
        signers
            .iter()
            .map(|&p| (p, generate_triple(signers, p, t, limits).unwrap()))
            .collect(),
    )
    .0
}

fn triple_batch_ours(signers: &[ParticipantId], t: usize) -> Cost {
    let limits = triple_limits(signers.len());
    let cost = ours(
        signers
            .iter()
            .map(|&p| (p, generate_triples(signers, p, t, BATCH, limits).unwrap()))
            .collect(),
    )
    .0;
    Cost {
        cpu: cost.cpu / BATCH as u32,
        bytes: cost.bytes / BATCH as f64,
    }
}

fn triple_raw(signers: &[ParticipantId], t: usize) -> Cost {
    let list = cs(signers);
    raw(list
        .iter()
        .map(|&p| {
            let protocol: Raw<cait_sith::triples::TripleGenerationOutput<Secp256k1>> =
                Box::new(cait_sith::triples::generate_triple(&list, p, t).unwrap());
            (p, protocol)
        })
        .collect())
    .0
}

fn presign_ours(
    signers: &[ParticipantId],
    keys: &BTreeMap<ParticipantId, KeyShare>,
) -> (Cost, BTreeMap<ParticipantId, chainsig_mpc::Presignature>) {
    let t = keys[&signers[0]].threshold;
    let (mut first, mut second) = (deal_insecure(signers, t), deal_insecure(signers, t));
    ours(
        signers
            .iter()
            .map(|&p| {
                let protocol = presign(
                    signers,
                    &keys[&p],
                    first.remove(&p).unwrap(),
                    second.remove(&p).unwrap(),
                    presign_limits(),
                )
                .unwrap();
                (p, protocol)
            })
            .collect(),
    )
}

fn presign_raw(
    signers: &[ParticipantId],
    keys: &BTreeMap<ParticipantId, KeyShare>,
) -> (Cost, Vec<cait_sith::PresignOutput<Secp256k1>>) {
    let t = keys[&signers[0]].threshold;
    let list = cs(signers);
    let (pub0, shares0) = cait_sith::triples::deal::<Secp256k1>(&mut rand_core::OsRng, &list, t);
    let (pub1, shares1) = cait_sith::triples::deal::<Secp256k1>(&mut rand_core::OsRng, &list, t);
    raw(list
        .iter()
        .zip(shares0.into_iter().zip(shares1))
        .map(|(&p, (s0, s1))| {
            let key = &keys[&ParticipantId(u32::from(p))];
            let args = PresignArguments {
                triple0: (s0, pub0.clone()),
                triple1: (s1, pub1.clone()),
                keygen_out: KeygenOutput {
                    private_share: *key.private_share(),
                    public_key: key.public_key,
                },
                threshold: t,
            };
            let protocol: Raw<cait_sith::PresignOutput<Secp256k1>> =
                Box::new(cait_sith::presign(&list, p, args).unwrap());
            (p, protocol)
        })
        .collect())
}

fn sign_ours(signers: &[ParticipantId], keys: &BTreeMap<ParticipantId, KeyShare>) -> Cost {
    let presignatures = presign_ours(signers, keys).1;
    let args = SignArgs {
        payload: EcdsaPayload::from_bytes([7; 32]).unwrap(),
        tweak: derive_tweak("alice.near", "bench").unwrap(),
        entropy: [1; 32],
    };
    ours(
        presignatures
            .into_iter()
            .map(|(p, pre)| {
                (
                    p,
                    sign(&keys[&p], pre, signers[0], &args, sign_limits()).unwrap(),
                )
            })
            .collect(),
    )
    .0
}

fn sign_raw(signers: &[ParticipantId], keys: &BTreeMap<ParticipantId, KeyShare>) -> Cost {
    let presignatures = presign_raw(signers, keys).1;
    let list = cs(signers);
    let pk = keys[&signers[0]].public_key;
    let z = EcdsaPayload::from_bytes([7; 32]).unwrap().to_scalar();
    raw(list
        .iter()
        .zip(presignatures)
        .map(|(&p, pre)| {
            let protocol: Raw<cait_sith::FullSignature<Secp256k1>> =
                Box::new(cait_sith::sign(&list, p, pk, pre, z).unwrap());
            (p, protocol)
        })
        .collect())
    .0
}

/// Runs both sides `reps` times, interleaved so that drift hits both alike.
fn compare(
    reps: usize,
    mut ours: impl FnMut() -> Cost,
    mut raw: impl FnMut() -> Cost,
) -> (Cost, Cost) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        a.push(ours());
        b.push(raw());
    }
    (median(a), median(b))
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn kb(bytes: f64) -> String {
    format!("{:.1}", bytes / 1000.0)
}

fn row(config: (u32, usize), what: &str, parties: usize, (ours, raw): (Cost, Cost)) {
    let ratio = ours.cpu.as_secs_f64() / raw.cpu.as_secs_f64();
    println!(
        "| ({},{}) | {what} | {parties} | {} | {} | {ratio:.2} | {} | {} |",
        config.0,
        config.1,
        ms(ours.cpu),
        ms(raw.cpu),
        kb(ours.bytes),
        kb(raw.bytes)
    );
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let configs: &[(u32, usize)] = if quick { &CONFIGS[..1] } else { &CONFIGS };
    let scale = if quick { 1 } else { 5 };
    println!("| (n,t) | protocol | parties | ours ms CPU/party | cait-sith ms CPU/party | ratio | ours KB sent/party | cait-sith KB sent/party |");
    println!("|---|---|---|---|---|---|---|---|");
    for &(n, t) in configs {
        let all = ids(0..n);
        let signers = ids(0..t as u32);
        let keys = keygen_ours(&all, t).1;
        row(
            (n, t),
            "keygen",
            all.len(),
            compare(scale, || keygen_ours(&all, t).0, || keygen_raw(&all, t)),
        );
        let new = ids(1..=n);
        row(
            (n, t),
            "reshare (one leaves, one joins)",
            new.len(),
            compare(
                scale,
                || reshare_ours(&all, &new, t, &keys),
                || reshare_raw(&all, &new, t, &keys),
            ),
        );
        let triple_reps = if quick { 1 } else { 5 };
        let single = compare(
            triple_reps,
            || triple_ours(&signers, t),
            || triple_raw(&signers, t),
        );
        row((n, t), "triple", t, single);
        let batch = compare(
            triple_reps,
            || triple_batch_ours(&signers, t),
            || triple_raw(&signers, t),
        );
        row(
            (n, t),
            &format!("triple, batch of {BATCH} (per triple)"),
            t,
            batch,
        );
        let small_reps = 5 * scale;
        row(
            (n, t),
            "presign",
            t,
            compare(
                small_reps,
                || presign_ours(&signers, &keys).0,
                || presign_raw(&signers, &keys).0,
            ),
        );
        row(
            (n, t),
            "sign",
            t,
            compare(
                small_reps,
                || sign_ours(&signers, &keys),
                || sign_raw(&signers, &keys),
            ),
        );
    }
}
