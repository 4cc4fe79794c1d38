//! `chainsig demo`: the whole signing pipeline with every MPC party in this process.

use std::time::Instant;

use chainsig_mpc::keygen::key_limits;
use chainsig_mpc::presign::presign_limits;
use chainsig_mpc::sign::sign_limits;
use chainsig_mpc::simulation::run_honest;
use chainsig_mpc::triples::triple_limits;
use chainsig_mpc::{
    generate_triples, keygen, presign, sign, ParticipantId, ProtocolError, SignArgs,
};
use chainsig_primitives::{
    derive_public_key, derive_tweak, EcdsaPayload, PublicKey, SignatureResponse,
};
use clap::Args;

use crate::error::CliError;

/// More parties than this would make the demo slow to no purpose.
const MAX_DEMO_NODES: u32 = 16;

#[derive(Args)]
pub struct DemoArgs {
    /// How many MPC parties.
    #[arg(long, default_value_t = 3)]
    nodes: u32,
    /// How many parties it takes to sign.
    #[arg(long, default_value_t = 2)]
    threshold: usize,
    /// The account that asks for the signature.
    #[arg(long, default_value = "alice.near")]
    account: String,
    /// The derivation path.
    #[arg(long, default_value = "ethereum-1")]
    path: String,
    /// The 32-byte payload to sign, hex.
    #[arg(
        long,
        default_value = "c7d5c1a4c3f6e1b0a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6"
    )]
    payload: String,
}

fn failed(step: &str) -> impl Fn((ParticipantId, ProtocolError)) -> CliError + '_ {
    move |(party, error)| CliError::Failed(format!("{step} failed at {party}: {error}"))
}

fn check(args: &DemoArgs) -> Result<(EcdsaPayload, chainsig_primitives::Tweak), CliError> {
    if !(2..=MAX_DEMO_NODES).contains(&args.nodes) {
        return Err(CliError::Input(format!(
            "--nodes must be between 2 and {MAX_DEMO_NODES}"
        )));
    }
    if args.threshold < 2 || args.threshold > args.nodes as usize {
        return Err(CliError::Input(
            "--threshold must be between 2 and --nodes".into(),
        ));
    }
    let payload =
        EcdsaPayload::from_hex(&args.payload).map_err(|e| CliError::input("--payload", e))?;
    let tweak =
        derive_tweak(&args.account, &args.path).map_err(|e| CliError::input("--path", e))?;
    Ok((payload, tweak))
}

pub fn run(args: DemoArgs) -> Result<(), CliError> {
    let (payload, tweak) = check(&args)?;
    let parties: Vec<ParticipantId> = (0..args.nodes).map(ParticipantId).collect();
    let t = args.threshold;
    let started = Instant::now();

    let keys = run_honest(parties.iter().map(|&p| {
        (
            p,
            keygen(&parties, p, t, key_limits(parties.len())).expect("checked parameters"),
        )
    }))
    .map_err(failed("keygen"))?;
    let root = PublicKey::from_affine(keys[&parties[0]].public_key)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    println!(
        "keygen        {} parties, threshold {t}: root key {root}",
        parties.len()
    );

    let signers = &parties[..t];
    let mut triples = run_honest(signers.iter().map(|&p| {
        let limits = triple_limits(signers.len());
        (
            p,
            generate_triples(signers, p, t, 2, limits).expect("checked parameters"),
        )
    }))
    .map_err(failed("triple generation"))?;
    println!("triples       2 among {t} signers");

    let presignatures = run_honest(signers.iter().map(|&p| {
        let mut mine = triples.remove(&p).unwrap_or_default();
        let (second, first) = (mine.pop(), mine.pop());
        let (Some(first), Some(second)) = (first, second) else {
            unreachable!("every signer made two triples")
        };
        (
            p,
            presign(signers, &keys[&p], first, second, presign_limits())
                .expect("checked parameters"),
        )
    }))
    .map_err(failed("presign"))?;
    println!("presignature  1");

    let request = SignArgs {
        payload,
        tweak,
        entropy: rand_entropy(),
    };
    let leader = signers[0];
    let outputs = run_honest(presignatures.into_iter().map(|(p, presignature)| {
        (
            p,
            sign(&keys[&p], presignature, leader, &request, sign_limits())
                .expect("checked parameters"),
        )
    }))
    .map_err(failed("signing"))?;
    let signature = outputs
        .get(&leader)
        .copied()
        .flatten()
        .ok_or_else(|| CliError::Failed("the leader produced no signature".into()))?;

    let derived = derive_public_key(root.as_affine(), &tweak)
        .and_then(PublicKey::from_affine)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    signature
        .verify(&derived, &payload)
        .map_err(|e| CliError::Failed(format!("signature check failed: {e}")))?;
    println!(
        "derived key   {derived} ({}, {:?})",
        args.account, args.path
    );
    println!("signature     verified in {:?} overall", started.elapsed());
    let response = serde_json::to_string(&SignatureResponse::Secp256k1(signature))
        .map_err(|e| CliError::Failed(e.to_string()))?;
    println!("{response}");
    Ok(())
}

/// Stands in for the block's random value that the network uses.
fn rand_entropy() -> [u8; 32] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut entropy = [0u8; 32];
    entropy[..16].copy_from_slice(&nanos.to_le_bytes());
    entropy
}
