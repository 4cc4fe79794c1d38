//! One connection to every peer, kept up: the node dials each peer and sends over that
//! connection, and reads what peers send over the connections they dialed. Each peer has its
//! own bounded outgoing queue and its own tasks, so a slow or dead peer fills only its own
//! queue (further messages to it are dropped, and the protocol waiting on it times out)
//! while the others go on. Heartbeats carry each node's status and keep a live view of who
//! is up.
//!
//! A peer is down when it has been silent for the peer timeout, or at once when the last
//! connection it dialed to this node closes: a process that dies (or is killed) has its
//! sockets closed by the kernel, and waiting out the timeout would cost every request it
//! leads seconds. A peer that only redials is up again with its first frame, a moment later.
//!
//! The peer set changes in place ([`Mesh::set_peers`]): when the contract adds or removes a
//! member, only the connections to that member start or stop, so the runs among the others
//! (signatures during a reshare) go on undisturbed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chainsig_primitives::ParticipantId;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::message::{MeshMessage, PeerStatus};
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
    #[error("the mesh has stopped")]
    Stopped,
}

/// What the mesh has heard from each peer: when, and the status it last sent.
#[derive(Default)]
struct Heard {
    at: HashMap<ParticipantId, Instant>,
    status: HashMap<ParticipantId, PeerStatus>,
    /// Open connections each peer dialed to this node.
    connections: HashMap<ParticipantId, usize>,
}

impl Heard {
    fn connected(&mut self, peer: ParticipantId) {
        *self.connections.entry(peer).or_default() += 1;
    }

    /// One of `peer`'s connections closed; with its last one, it counts as down now.
    fn disconnected(&mut self, peer: ParticipantId) {
        let open = self.connections.entry(peer).or_default();
        *open = open.saturating_sub(1);
        if *open == 0 {
            self.connections.remove(&peer);
            self.at.remove(&peer);
            self.status.remove(&peer);
        }
    }
}

/// Counts a peer's inbound connection for as long as it lives, however its task ends.
struct OpenConnection {
    peer: ParticipantId,
    shared: Arc<Shared>,
}

impl OpenConnection {
    fn new(peer: ParticipantId, shared: Arc<Shared>) -> Self {
        shared.heard().connected(peer);
        Self { peer, shared }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.shared.heard().disconnected(self.peer);
    }
}

/// State the connection tasks share with the mesh.
struct Shared {
    heard: Mutex<Heard>,
    /// The current peers: a connection from anyone else is closed at its next frame.
    members: RwLock<HashSet<ParticipantId>>,
    /// What this node's heartbeats say.
    own_status: Mutex<PeerStatus>,
}

impl Shared {
    fn heard(&self) -> std::sync::MutexGuard<'_, Heard> {
        self.heard.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_member(&self, peer: ParticipantId) -> bool {
        self.members
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&peer)
    }

    fn own_status(&self) -> PeerStatus {
        *self.own_status.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The outgoing side of one peer: its queue and the task that dials it.
struct Link {
    peer: PeerInfo,
    queue: mpsc::Sender<Vec<u8>>,
    task: JoinHandle<()>,
}

pub struct Mesh {
    me: ParticipantId,
    settings: MeshSettings,
    endpoint: Arc<Endpoint>,
    links: Mutex<HashMap<ParticipantId, Link>>,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
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
        let shared = Arc::new(Shared {
            heard: Mutex::default(),
            members: RwLock::default(),
            own_status: Mutex::default(),
        });
        let accept_task = tokio::spawn(accept_loop(
            endpoint.clone(),
            listener,
            inbox,
            shared.clone(),
        ));
        let mesh = Self {
            me,
            settings,
            endpoint,
            links: Mutex::default(),
            shared,
            accept_task,
        };
        mesh.set_peers(peers);
        (mesh, inbox_rx)
    }

    fn links(&self) -> std::sync::MutexGuard<'_, HashMap<ParticipantId, Link>> {
        self.links.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `peers` the peer set: dials the new ones, hangs up on those no longer in it
    /// (and on one whose address or key changed, to dial it anew), keeps the rest.
    pub fn set_peers(&self, peers: Vec<PeerInfo>) {
        let peers: HashMap<ParticipantId, PeerInfo> = peers
            .into_iter()
            .filter(|p| p.id != self.me)
            .map(|p| (p.id, p))
            .collect();
        *self
            .shared
            .members
            .write()
            .unwrap_or_else(|p| p.into_inner()) = peers.keys().copied().collect();
        let mut links = self.links();
        links.retain(|id, link| {
            let keep = peers.get(id) == Some(&link.peer);
            if !keep {
                link.task.abort();
            }
            keep
        });
        for (id, peer) in peers {
            if links.contains_key(&id) {
                continue;
            }
            let (queue, queue_rx) = mpsc::channel(self.settings.queue_len);
            let task = tokio::spawn(dial_loop(
                self.endpoint.clone(),
                peer.clone(),
                queue_rx,
                self.settings,
                self.shared.clone(),
            ));
            links.insert(id, Link { peer, queue, task });
        }
        let mut heard = self.shared.heard();
        heard.at.retain(|id, _| links.contains_key(id));
        heard.status.retain(|id, _| links.contains_key(id));
        // Connection counts stay: the connections' own guards count them down.
    }

    /// Queues a message for `to` without waiting.
    pub fn send(&self, to: ParticipantId, message: &MeshMessage) -> Result<(), SendError> {
        let links = self.links();
        let link = links.get(&to).ok_or(SendError::UnknownPeer(to))?;
        link.queue.try_send(message.encode()).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::QueueFull(to),
            mpsc::error::TrySendError::Closed(_) => SendError::Stopped,
        })
    }

    /// This node and every peer heard from within the peer timeout.
    pub fn alive(&self) -> Vec<ParticipantId> {
        let now = Instant::now();
        let heard = self.shared.heard();
        let mut alive: Vec<ParticipantId> = heard
            .at
            .iter()
            .filter(|(_, &at)| now.duration_since(at) < self.settings.peer_timeout)
            .map(|(&peer, _)| peer)
            .filter(|&peer| self.shared.is_member(peer))
            .collect();
        alive.push(self.me);
        alive.sort_unstable();
        alive.dedup();
        alive
    }

    /// What `peer` last said about itself, if it is up.
    pub fn status(&self, peer: ParticipantId) -> Option<PeerStatus> {
        if peer == self.me {
            return Some(self.shared.own_status());
        }
        let now = Instant::now();
        let heard = self.shared.heard();
        let fresh = heard
            .at
            .get(&peer)
            .is_some_and(|&at| now.duration_since(at) < self.settings.peer_timeout);
        fresh.then(|| heard.status.get(&peer).copied()).flatten()
    }

    /// What this node's next heartbeats tell its peers. A change in whether it can lead, or
    /// in its height, goes out at once, not with the next heartbeat: peers decide from it who
    /// leads each request and who is caught up enough to take part in a run (a status a
    /// block is a few dozen bytes per peer).
    pub fn set_status(&self, status: PeerStatus) {
        let before = std::mem::replace(
            &mut *self
                .shared
                .own_status
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
            status,
        );
        if before.can_lead != status.can_lead
            || before.serving_epoch != status.serving_epoch
            || before.height != status.height
        {
            let frame = MeshMessage::Status(status).encode();
            for link in self.links().values() {
                let _ = link.queue.try_send(frame.clone());
            }
        }
    }

    /// Closes the listener and every connection now, even while runs still hold the mesh.
    pub fn stop(&self) {
        self.accept_task.abort();
        for link in self.links().values() {
            link.task.abort();
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
    shared: Arc<Shared>,
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
        let (endpoint, inbox, shared) = (endpoint.clone(), inbox.clone(), shared.clone());
        connections.spawn(async move {
            match endpoint.accept(tcp).await {
                Ok(connection) => read_loop(connection, inbox, shared).await,
                Err(error) => tracing::warn!(%remote, %error, "mesh: refused a connection"),
            }
        });
    }
}

async fn read_loop(
    mut connection: Connection,
    inbox: mpsc::Sender<(ParticipantId, MeshMessage)>,
    shared: Arc<Shared>,
) {
    let peer = connection.peer;
    let _open = OpenConnection::new(peer, shared.clone());
    loop {
        let frame = match connection.recv_frame().await {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%peer, %error, "mesh: dropping connection");
                return;
            }
        };
        if !shared.is_member(peer) {
            tracing::info!(%peer, "mesh: closing the connection of a peer that left");
            return;
        }
        let message = match MeshMessage::decode(&frame) {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%peer, %error, "mesh: malformed frame; dropping connection");
                return;
            }
        };
        {
            let mut heard = shared.heard();
            heard.at.insert(peer, Instant::now());
            if let MeshMessage::Status(status) = message {
                heard.status.insert(peer, status);
            }
        }
        if matches!(message, MeshMessage::Heartbeat | MeshMessage::Status(_)) {
            continue;
        }
        // Waiting here slows only this peer's connection.
        if inbox.send((peer, message)).await.is_err() {
            return;
        }
    }
}

async fn dial_loop(
    endpoint: Arc<Endpoint>,
    peer: PeerInfo,
    mut queue: mpsc::Receiver<Vec<u8>>,
    settings: MeshSettings,
    shared: Arc<Shared>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match endpoint.connect(&peer.address, peer.id, peer.tls_key).await {
            Ok(connection) => {
                backoff = Duration::from_millis(50);
                if !write_loop(connection, &mut queue, settings, &shared).await {
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

/// Sends queued frames and status heartbeats until the connection breaks (returns true:
/// redial) or the mesh is gone (returns false).
async fn write_loop(
    mut connection: Connection,
    queue: &mut mpsc::Receiver<Vec<u8>>,
    settings: MeshSettings,
    shared: &Shared,
) -> bool {
    let mut ticker = tokio::time::interval(settings.heartbeat_interval);
    loop {
        let frame = tokio::select! {
            frame = queue.recv() => match frame {
                Some(frame) => frame,
                None => return false,
            },
            _ = ticker.tick() => MeshMessage::Status(shared.own_status()).encode(),
        };
        if let Err(error) = connection.send_frame(&frame).await {
            tracing::debug!(peer = %connection.peer, %error, "mesh: send failed; redialing");
            return true;
        }
    }
}
