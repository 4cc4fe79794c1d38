//! Three nodes on loopback keep a mesh: messages flow, liveness follows who is up.

mod common;

use std::time::Duration;

use chainsig_mpc::ParticipantId;
use chainsig_node::mesh::message::{InstanceId, MeshMessage};
use chainsig_node::mesh::network::{Mesh, MeshSettings, SendError};
use common::start_mesh;

fn settings() -> MeshSettings {
    MeshSettings {
        heartbeat_interval: Duration::from_millis(50),
        peer_timeout: Duration::from_millis(400),
        ..MeshSettings::default()
    }
}

async fn start_three() -> Vec<(
    Mesh,
    tokio::sync::mpsc::Receiver<(ParticipantId, MeshMessage)>,
)> {
    start_mesh(3, settings())
        .await
        .into_iter()
        .map(|(_, mesh, inbox)| (mesh, inbox))
        .collect()
}

async fn wait_until(mut condition: impl FnMut() -> bool) {
    for _ in 0..100 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not reached in 2 s");
}

#[tokio::test]
async fn messages_flow_and_liveness_follows_who_is_up() {
    let mut nodes = start_three().await;
    let everyone: Vec<ParticipantId> = (0..3).map(ParticipantId).collect();
    wait_until(|| nodes.iter().all(|(mesh, _)| mesh.alive() == everyone)).await;

    let message = MeshMessage::Protocol {
        instance: InstanceId([4; 32]),
        payload: b"share".to_vec(),
    };
    nodes[0].0.send(ParticipantId(2), &message).unwrap();
    let (from, received) = tokio::time::timeout(Duration::from_secs(2), nodes[2].1.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((from, received), (ParticipantId(0), message.clone()));

    assert_eq!(
        nodes[0].0.send(ParticipantId(0), &message),
        Err(SendError::UnknownPeer(ParticipantId(0)))
    );
    assert_eq!(
        nodes[0].0.send(ParticipantId(9), &message),
        Err(SendError::UnknownPeer(ParticipantId(9)))
    );

    // Node 1 goes down: the others stop counting it after the peer timeout.
    drop(nodes.remove(1));
    let (first, rest) = nodes.split_at(1);
    wait_until(|| first[0].0.alive() == vec![ParticipantId(0), ParticipantId(2)]).await;
    wait_until(|| rest[0].0.alive() == vec![ParticipantId(0), ParticipantId(2)]).await;
}
