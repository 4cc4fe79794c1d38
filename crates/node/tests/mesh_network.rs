//! Three nodes on loopback keep a mesh: messages flow, liveness follows who is up.

mod common;

use std::time::Duration;

use chainsig_mpc::ParticipantId;
use chainsig_node::mesh::message::{InstanceId, MeshMessage, PeerStatus};
use chainsig_node::mesh::network::{Mesh, MeshSettings, SendError};
use common::{start_mesh, start_mesh_with_peers};

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

    // Node 1 goes down: the others stop counting it.
    drop(nodes.remove(1));
    let (first, rest) = nodes.split_at(1);
    wait_until(|| first[0].0.alive() == vec![ParticipantId(0), ParticipantId(2)]).await;
    wait_until(|| rest[0].0.alive() == vec![ParticipantId(0), ParticipantId(2)]).await;
}

#[tokio::test]
async fn a_peer_whose_connection_closes_is_down_at_once() {
    // A peer timeout far longer than the test: only the closed connection can tell.
    let patient = MeshSettings {
        peer_timeout: Duration::from_secs(60),
        ..settings()
    };
    let mut nodes: Vec<_> = start_mesh(3, patient).await;
    let everyone: Vec<ParticipantId> = (0..3).map(ParticipantId).collect();
    wait_until(|| nodes.iter().all(|(_, mesh, _)| mesh.alive() == everyone)).await;
    let gone = nodes.remove(1);
    gone.1.stop();
    drop(gone);
    let two_left = vec![ParticipantId(0), ParticipantId(2)];
    let started = std::time::Instant::now();
    wait_until(|| nodes.iter().all(|(_, mesh, _)| mesh.alive() == two_left)).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(nodes[0].1.status(ParticipantId(1)), None);
}

#[tokio::test]
async fn members_change_in_place_and_statuses_travel() {
    let (nodes, peers) = start_mesh_with_peers(3, settings()).await;
    let everyone: Vec<ParticipantId> = (0..3).map(ParticipantId).collect();
    wait_until(|| nodes.iter().all(|(_, mesh, _)| mesh.alive() == everyone)).await;
    let status = PeerStatus {
        height: 77,
        serving_epoch: Some(4),
        presignatures: 3,
        can_lead: true,
    };
    nodes[2].1.set_status(status);
    wait_until(|| nodes[0].1.status(ParticipantId(2)) == Some(status)).await;

    // Nodes 0 and 1 drop node 2 from their sets: at once it is neither alive nor reachable for
    // them, and they keep talking to each other over the same connections.
    let without_two: Vec<_> = peers.iter().filter(|p| p.id.0 != 2).cloned().collect();
    nodes[0].1.set_peers(without_two.clone());
    nodes[1].1.set_peers(without_two);
    let two_gone = vec![ParticipantId(0), ParticipantId(1)];
    assert_eq!(nodes[0].1.alive(), two_gone);
    assert_eq!(nodes[0].1.status(ParticipantId(2)), None);
    let message = MeshMessage::Job(b"still here".to_vec());
    assert_eq!(
        nodes[0].1.send(ParticipantId(2), &message),
        Err(SendError::UnknownPeer(ParticipantId(2)))
    );
    let mut nodes = nodes;
    nodes[0].1.send(ParticipantId(1), &message).unwrap();
    let (from, received) = tokio::time::timeout(Duration::from_secs(2), nodes[1].2.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((from, received), (ParticipantId(0), message));
    // Node 2, still dialing them, is not heard: node 0 closes what it sends.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(nodes[0].1.alive(), two_gone);

    // Added back: alive again.
    nodes[0].1.set_peers(peers.clone());
    nodes[1].1.set_peers(peers);
    wait_until(|| nodes[0].1.alive() == everyone).await;
}
