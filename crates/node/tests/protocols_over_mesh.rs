//! The engine over the real mesh: three nodes on loopback with mutual TLS run a DKG, make
//! triples and a presignature, and sign under a derived key.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chainsig_mpc::keygen::key_limits;
use chainsig_mpc::presign::presign_limits;
use chainsig_mpc::sign::sign_limits;
use chainsig_mpc::triples::triple_limits;
use chainsig_mpc::{generate_triples, keygen, presign, sign, ParticipantId, SignArgs};
use chainsig_node::mesh::message::InstanceId;
use chainsig_node::mesh::network::{Mesh, MeshSettings};
use chainsig_node::runner::{run, Router};
use chainsig_primitives::{derive_public_key, derive_tweak, EcdsaPayload, PublicKey};
use common::start_mesh;

struct Node {
    id: ParticipantId,
    mesh: Arc<Mesh>,
    router: Router,
}

async fn network(n: u32) -> Vec<Node> {
    start_mesh(n, MeshSettings::default())
        .await
        .into_iter()
        .map(|(id, mesh, inbox)| {
            let router = Router::default();
            let (jobs, _jobs_rx) = tokio::sync::mpsc::channel(1);
            tokio::spawn(router.clone().route_inbox(inbox, jobs));
            Node {
                id,
                mesh: Arc::new(mesh),
                router,
            }
        })
        .collect()
}

/// Runs one protocol instance on every node at once; `make` builds each node's protocol.
async fn on_all<P, T>(
    nodes: &[Node],
    instance: u8,
    mut make: impl FnMut(ParticipantId) -> P,
) -> BTreeMap<ParticipantId, T>
where
    P: chainsig_mpc::Protocol<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let participants: Vec<ParticipantId> = nodes.iter().map(|n| n.id).collect();
    let mut tasks = Vec::new();
    for node in nodes {
        let protocol = make(node.id);
        let (mesh, router, participants, id) = (
            node.mesh.clone(),
            node.router.clone(),
            participants.clone(),
            node.id,
        );
        tasks.push(tokio::spawn(async move {
            let output = run(
                protocol,
                InstanceId([instance; 32]),
                id,
                &participants,
                &mesh,
                &router,
            )
            .await;
            (id, output.unwrap_or_else(|e| panic!("{id}: {e}")))
        }));
    }
    let mut outputs = BTreeMap::new();
    for task in tasks {
        let (id, output) = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .unwrap()
            .unwrap();
        outputs.insert(id, output);
    }
    outputs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dkg_triples_presign_and_sign_over_mutual_tls() {
    let nodes = network(3).await;
    let ids: Vec<ParticipantId> = nodes.iter().map(|n| n.id).collect();

    let keys = on_all(&nodes, 1, |me| keygen(&ids, me, 2, key_limits(3)).unwrap()).await;
    let root = keys[&ids[0]].public_key;
    assert!(keys.values().all(|k| k.public_key == root));

    let mut triples = on_all(&nodes, 2, |me| {
        generate_triples(&ids, me, 2, 2, triple_limits(3)).unwrap()
    })
    .await;
    let presignatures = on_all(&nodes, 3, |me| {
        let mut mine = triples.remove(&me).unwrap();
        let (second, first) = (mine.pop().unwrap(), mine.pop().unwrap());
        presign(&ids, &keys[&me], first, second, presign_limits()).unwrap()
    })
    .await;

    let args = SignArgs {
        payload: EcdsaPayload::from_bytes([0x42; 32]).unwrap(),
        tweak: derive_tweak("alice.near", "mesh").unwrap(),
        entropy: [3; 32],
    };
    let mut presignatures = presignatures;
    let leader = ParticipantId(1);
    let outputs = on_all(&nodes, 4, |me| {
        sign(
            &keys[&me],
            presignatures.remove(&me).unwrap(),
            leader,
            &args,
            sign_limits(),
        )
        .unwrap()
    })
    .await;
    let signature = outputs[&leader].expect("the leader has it");
    let derived = PublicKey::from_affine(derive_public_key(&root, &args.tweak).unwrap()).unwrap();
    signature.verify(&derived, &args.payload).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_that_declines_ends_the_run_at_once() {
    let nodes = network(3).await;
    let participants: Vec<ParticipantId> = nodes.iter().map(|n| n.id).collect();
    let instance = InstanceId([77; 32]);
    // Node 0 starts a triple batch with a timeout far beyond the test; node 1 declines and
    // node 2 never shows up.
    let protocol = generate_triples(
        &participants,
        nodes[0].id,
        2,
        1,
        triple_limits(3).with_timeout(Duration::from_secs(600)),
    )
    .unwrap();
    let (mesh, router, me) = (nodes[0].mesh.clone(), nodes[0].router.clone(), nodes[0].id);
    let list = participants.clone();
    let running =
        tokio::spawn(async move { run(protocol, instance, me, &list, &mesh, &router).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A decline for another run does not touch this one.
    chainsig_node::tasks::decline(&nodes[1].mesh, nodes[0].id, InstanceId([78; 32]));
    chainsig_node::tasks::decline(&nodes[1].mesh, nodes[0].id, instance);
    let error = tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the run ends at once")
        .unwrap()
        .expect_err("it fails");
    assert_eq!(error, chainsig_mpc::ProtocolError::Declined(nodes[1].id));
}
