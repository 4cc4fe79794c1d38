//! One connection to every peer, kept up: the node dials each peer and sends over that
//! connection, and reads what peers send over the connections they dialed. Each peer has its
//! own bounded outgoing queue and its own tasks, so a slow or dead peer fills only its own
//! queue (further messages to it are dropped, and the protocol waiting on it times out)
//! while the others go on. Heartbeats keep a live view of who is up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chainsig_primitives::ParticipantId;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::message::MeshMessage;
use super::{Connection, Endpoint, TlsPublicKey};

/// A peer as the contract lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub id: ParticipantId,
    /// `host:port` to dial.
    pub address: String,
    pub tls_key: TlsPublicKey,
}

#[derive(Debug, Clone, Copy)]
pub struct MeshSettings {
    pub heartbeat_interval: Duration,
    /// A peer not heard from for this long counts as down.
    pub peer_timeout: Duration,
    /// Frames queued for one peer before further ones are dropped.
    pub queue_len: usize,
    /// Frames received and not yet taken by the node, from all peers together.
    pub inbox_len: usize,
}

impl Default for MeshSettings {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_millis(500),
            peer_timeout: Duration::from_secs(3),
            queue_len: 1024,
            inbox_len: 4096,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SendError {
    #[error("{0} is not a peer")]
    UnknownPeer(ParticipantId),
    #[error("the queue to {0} is full; message dropped")]
    QueueFull(ParticipantId),
    #[error("the mesh has stopped (the participant set changed)")]
    Stopped,
}

type LastHeard = Arc<Mutex<HashMap<ParticipantId, Instant>>>;

pub struct Mesh {
    me: ParticipantId,
    settings: MeshSettings,
    queues: HashMap<ParticipantId, mpsc::Sender<Vec<u8>>>,
    last_heard: LastHeard,
    tasks: Vec<JoinHandle<()>>,
}

impl Mesh {
    /// Starts listening on `listener` and dialing every peer. Returns the mesh and the inbox
    /// of protocol messages peers send.
    pub fn start(
        endpoint: Arc<Endpoint>,
        listener: TcpListener,
        me: ParticipantId,
        peers: Vec<PeerInfo>,
        settings: MeshSettings,
    ) -> (Self, mpsc::Receiver<(ParticipantId, MeshMessage)>) {
        let (inbox, inbox_rx) = mpsc::channel(settings.inbox_len);
        let last_heard = LastHeard::default();
        let mut tasks = vec![tokio::spawn(accept_loop(
            endpoint.clone(),
            listener,
            inbox,
            last_heard.clone(),
        ))];
        let mut queues = HashMap::new();
        for peer in peers.into_iter().filter(|p| p.id != me) {
            let (queue, queue_rx) = mpsc::channel(settings.queue_len);
            queues.insert(peer.id, queue);
            tasks.push(tokio::spawn(dial_loop(
                endpoint.clone(),
                peer,
                queue_rx,
                settings,
            )));
        }
        let mesh = Self {
            me,
            settings,
            queues,
            last_heard,
            tasks,
        };
        (mesh, inbox_rx)
    }

    /// Queues a message for `to` without waiting.
    pub fn send(&self, to: ParticipantId, message: &MeshMessage) -> Result<(), SendError> {
        let queue = self.queues.get(&to).ok_or(SendError::UnknownPeer(to))?;
        queue.try_send(message.encode()).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::QueueFull(to),
            mpsc::error::TrySendError::Closed(_) => SendError::Stopped,
        })
    }

    /// This node and every peer heard from within the peer timeout.
    pub fn alive(&self) -> Vec<ParticipantId> {
        let now = Instant::now();
        let heard = self.last_heard.lock().unwrap_or_else(|p| p.into_inner());
        let mut alive: Vec<ParticipantId> = heard
            .iter()
            .filter(|(_, &at)| now.duration_since(at) < self.settings.peer_timeout)
            .map(|(&peer, _)| peer)
            .collect();
        alive.push(self.me);
        alive.sort_unstable();
        alive.dedup();
        alive
    }
}

impl Mesh {
    /// Closes the listener and every connection now, even while runs still hold the mesh.
    pub fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(
    endpoint: Arc<Endpoint>,
    listener: TcpListener,
    inbox: mpsc::Sender<(ParticipantId, MeshMessage)>,
    last_heard: LastHeard,
) {
    // Owns the connections' tasks: when the mesh stops this loop, they stop with it.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "mesh: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (endpoint, inbox, last_heard) = (endpoint.clone(), inbox.clone(), last_heard.clone());
        connections.spawn(async move {
            match endpoint.accept(tcp).await {
                Ok(connection) => read_loop(connection, inbox, last_heard).await,
                Err(error) => tracing::warn!(%remote, %error, "mesh: refused a connection"),
            }
        });
    }
}

async fn read_loop(
    mut connection: Connection,
    inbox: mpsc::Sender<(ParticipantId, MeshMessage)>,
    last_heard: LastHeard,
) {
    let peer = connection.peer;
    loop {
        let frame = match connection.recv_frame().await {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%peer, %error, "mesh: dropping connection");
                return;
            }
        };
        last_heard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer, Instant::now());
        match MeshMessage::decode(&frame) {
            Ok(MeshMessage::Heartbeat) => {}
            Ok(message) => {
                // Waiting here slows only this peer's connection.
                if inbox.send((peer, message)).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                tracing::warn!(%peer, %error, "mesh: malformed frame; dropping connection");
                return;
            }
        }
    }
}

async fn dial_loop(
    endpoint: Arc<Endpoint>,
    peer: PeerInfo,
    mut queue: mpsc::Receiver<Vec<u8>>,
    settings: MeshSettings,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match endpoint.connect(&peer.address, peer.id, peer.tls_key).await {
            Ok(connection) => {
                backoff = Duration::from_millis(50);
                if !write_loop(connection, &mut queue, settings).await {
                    return;
                }
            }
            Err(error) => {
                tracing::debug!(peer = %peer.id, %error, "mesh: dial failed");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Sends queued frames and heartbeats until the connection breaks (returns true: redial) or
/// the mesh is gone (returns false).
async fn write_loop(
    mut connection: Connection,
    queue: &mut mpsc::Receiver<Vec<u8>>,
    settings: MeshSettings,
) -> bool {
    let heartbeat = MeshMessage::Heartbeat.encode();
    let mut ticker = tokio::time::interval(settings.heartbeat_interval);
    loop {
        let frame = tokio::select! {
            frame = queue.recv() => match frame {
                Some(frame) => frame,
                None => return false,
            },
            _ = ticker.tick() => heartbeat.clone(),
        };
        if let Err(error) = connection.send_frame(&frame).await {
            tracing::debug!(peer = %connection.peer, %error, "mesh: send failed; redialing");
            return true;
        }
    }
}
