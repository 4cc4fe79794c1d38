//! A mesh of `n` nodes on loopback, with mutual TLS and every key in every directory.
#![allow(dead_code)]

use std::sync::Arc;

use chainsig_mpc::ParticipantId;
use chainsig_node::mesh::message::MeshMessage;
use chainsig_node::mesh::network::{Mesh, MeshSettings, PeerInfo};
use chainsig_node::mesh::{Endpoint, PeerDirectory, TlsIdentity};
use tokio::net::TcpListener;
use tokio::sync::mpsc::Receiver;

pub async fn start_mesh(
    n: u32,
    settings: MeshSettings,
) -> Vec<(ParticipantId, Mesh, Receiver<(ParticipantId, MeshMessage)>)> {
    start_mesh_with_peers(n, settings).await.0
}

/// [`start_mesh`], and every node's peer entry (to change the peer sets later).
pub async fn start_mesh_with_peers(
    n: u32,
    settings: MeshSettings,
) -> (
    Vec<(ParticipantId, Mesh, Receiver<(ParticipantId, MeshMessage)>)>,
    Vec<PeerInfo>,
) {
    let identities: Vec<TlsIdentity> = (0..n).map(|_| TlsIdentity::generate().unwrap()).collect();
    let mut listeners = Vec::new();
    for _ in 0..n {
        listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let peers: Vec<PeerInfo> = identities
        .iter()
        .zip(&listeners)
        .enumerate()
        .map(|(i, (identity, listener))| PeerInfo {
            id: ParticipantId(i as u32),
            address: listener.local_addr().unwrap().to_string(),
            tls_key: identity.public_key(),
        })
        .collect();
    let directory = PeerDirectory::default();
    directory.replace(peers.iter().map(|p| (p.tls_key, p.id)));
    let nodes = identities
        .into_iter()
        .zip(listeners)
        .enumerate()
        .map(|(i, (identity, listener))| {
            let id = ParticipantId(i as u32);
            let endpoint = Arc::new(Endpoint::new(identity, directory.clone()).unwrap());
            let (mesh, inbox) = Mesh::start(endpoint, listener, id, peers.clone(), settings);
            (id, mesh, inbox)
        })
        .collect();
    (nodes, peers)
}
