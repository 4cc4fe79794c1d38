//! The engine's in-process ceiling: every party of (n, t) in this process, the whole
//! pipeline per signature (two triples, a presignature, a signature) with no network and no
//! chain, on as many threads as the machine has cores. What the network could reach at
//! best on this machine.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chainsig_mpc::keygen::key_limits;
use chainsig_mpc::presign::presign_limits;
use chainsig_mpc::sign::sign_limits;
use chainsig_mpc::simulation::run_honest;
use chainsig_mpc::triples::triple_limits;
use chainsig_mpc::{
    generate_triples, keygen, presign, sign, KeyShare, ParticipantId, ProtocolError, SignArgs,
};
use chainsig_primitives::{derive_tweak, EcdsaPayload};

/// Signatures made per batch of triples on one thread (the nodes batch triples too).
const BATCH: usize = 4;

pub struct Ceiling {
    pub signatures: usize,
    pub threads: usize,
    pub elapsed: Duration,
}

impl Ceiling {
    pub fn per_second(&self) -> f64 {
        self.signatures as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn failed(step: &'static str) -> impl Fn((ParticipantId, ProtocolError)) -> String {
    move |(party, e)| format!("{step} failed at {party}: {e}")
}

/// Runs `signatures` signatures of (n, t) (rounded up to whole batches per thread).
pub fn measure(n: u32, t: usize, signatures: usize) -> Result<Ceiling, String> {
    let parties: Vec<ParticipantId> = (0..n).map(ParticipantId).collect();
    let keys = run_honest(parties.iter().map(|&p| {
        let protocol = keygen(&parties, p, t, key_limits(parties.len()));
        (p, protocol.expect("valid keygen parameters"))
    }))
    .map_err(failed("keygen"))?;
    let keys = Arc::new(keys);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let batches = signatures.div_ceil(BATCH).max(threads);
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|worker| {
            let keys = keys.clone();
            let mine = batches / threads + usize::from(worker < batches % threads);
            let signers = parties[..t].to_vec();
            std::thread::spawn(move || (0..mine).try_for_each(|_| batch(&signers, &keys)))
        })
        .collect();
    for worker in workers {
        worker
            .join()
            .map_err(|_| "an engine thread panicked".to_string())??;
    }
    Ok(Ceiling {
        signatures: batches * BATCH,
        threads,
        elapsed: started.elapsed(),
    })
}

/// `BATCH` signatures among `signers`: triples, presignatures, signatures.
fn batch(
    signers: &[ParticipantId],
    keys: &BTreeMap<ParticipantId, KeyShare>,
) -> Result<(), String> {
    let t = signers.len();
    let mut triples = run_honest(signers.iter().map(|&p| {
        let protocol = generate_triples(signers, p, t, 2 * BATCH, triple_limits(t));
        (p, protocol.expect("valid triple parameters"))
    }))
    .map_err(failed("triples"))?;
    for round in 0..BATCH {
        let presignatures = run_honest(signers.iter().map(|&p| {
            let mine = triples.get_mut(&p).expect("every signer made triples");
            let (first, second) = (mine.pop(), mine.pop());
            let (Some(first), Some(second)) = (first, second) else {
                unreachable!("two triples per signature were made")
            };
            let protocol = presign(signers, &keys[&p], first, second, presign_limits());
            (p, protocol.expect("valid presign parameters"))
        }))
        .map_err(failed("presign"))?;
        let request = request(round);
        let leader = signers[0];
        let outputs = run_honest(presignatures.into_iter().map(|(p, presignature)| {
            let protocol = sign(&keys[&p], presignature, leader, &request, sign_limits());
            (p, protocol.expect("valid sign parameters"))
        }))
        .map_err(failed("sign"))?;
        if outputs.get(&leader).copied().flatten().is_none() {
            return Err("the leader produced no signature".into());
        }
    }
    Ok(())
}

fn request(round: usize) -> SignArgs {
    let mut payload = [0x42u8; 32];
    payload[0] = 0x01;
    payload[31] = round as u8;
    SignArgs {
        payload: EcdsaPayload::from_bytes(payload).expect("below the curve order"),
        tweak: derive_tweak("bench.test.near", "ceiling").expect("a valid path"),
        entropy: [round as u8; 32],
    }
}
