//! Runs engine protocols over the mesh. The [`Router`] hands each protocol instance the
//! messages addressed to it; [`run`] drives one instance until it finishes, fails or times
//! out. A peer may start an instance a moment before this node does, so messages for an
//! instance not yet registered wait in a small, bounded, expiring buffer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chainsig_mpc::{Protocol, ProtocolError, Recipient, Step};
use chainsig_primitives::ParticipantId;
use tokio::sync::mpsc;

use crate::mesh::message::{InstanceId, MeshMessage};
use crate::mesh::network::Mesh;

/// Messages kept for one instance nobody has registered yet.
const EARLY_PER_INSTANCE: usize = 256;
/// Instances with early messages kept at once.
const EARLY_INSTANCES: usize = 1024;
/// How long early messages wait for their instance.
const EARLY_TTL: Duration = Duration::from_secs(30);
/// Messages waiting for one running instance. Honest protocols have a handful in flight at a
/// time; past this the instance is not keeping up or a peer is flooding it, and more are dropped.
const INBOX_PER_INSTANCE: usize = 4096;
/// How often a waiting protocol is polled for its deadline.
const DEADLINE_TICK: Duration = Duration::from_millis(50);

/// What reaches a run from one peer.
#[derive(Debug)]
enum Inbound {
    Message(Vec<u8>),
    /// The peer cannot take part ([`MeshMessage::Decline`]).
    Declined,
}

type Delivery = (ParticipantId, Inbound);

struct Early {
    since: Instant,
    messages: Vec<Delivery>,
}

#[derive(Default)]
struct Routes {
    live: HashMap<InstanceId, mpsc::Sender<Delivery>>,
    early: HashMap<InstanceId, Early>,
}

/// Sends each protocol message to the instance it names.
#[derive(Default, Clone)]
pub struct Router(Arc<Mutex<Routes>>);

impl Router {
    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens the instance's inbox, with whatever already arrived for it.
    fn register(&self, instance: InstanceId) -> mpsc::Receiver<Delivery> {
        let (sender, receiver) = mpsc::channel(INBOX_PER_INSTANCE);
        let mut routes = self.routes();
        if let Some(early) = routes.early.remove(&instance) {
            // At most EARLY_PER_INSTANCE, which is below the inbox's capacity.
            for delivery in early.messages {
                let _ = sender.try_send(delivery);
            }
        }
        routes.live.insert(instance, sender);
        receiver
    }

    fn unregister(&self, instance: &InstanceId) {
        self.routes().live.remove(instance);
    }

    /// Routes one message; returns false if it was dropped (buffer full).
    pub fn deliver(&self, from: ParticipantId, instance: InstanceId, payload: Vec<u8>) -> bool {
        self.route(from, instance, Inbound::Message(payload))
    }

    /// Routes a peer's "I cannot take part"; returns false if it was dropped.
    pub fn decline(&self, from: ParticipantId, instance: InstanceId) -> bool {
        self.route(from, instance, Inbound::Declined)
    }

    fn route(&self, from: ParticipantId, instance: InstanceId, inbound: Inbound) -> bool {
        let mut routes = self.routes();
        if let Some(sender) = routes.live.get(&instance) {
            return sender.try_send((from, inbound)).is_ok();
        }
        let now = Instant::now();
        routes
            .early
            .retain(|_, early| now.duration_since(early.since) < EARLY_TTL);
        if !routes.early.contains_key(&instance) && routes.early.len() >= EARLY_INSTANCES {
            return false;
        }
        let early = routes.early.entry(instance).or_insert_with(|| Early {
            since: now,
            messages: Vec::new(),
        });
        if early.messages.len() >= EARLY_PER_INSTANCE {
            return false;
        }
        early.messages.push((from, inbound));
        true
    }

    /// Routes everything the mesh receives until the mesh closes: protocol messages to their
    /// runs, job announcements to `jobs` (dropped with a warning when the receiver lags).
    pub async fn route_inbox(
        self,
        mut inbox: mpsc::Receiver<(ParticipantId, MeshMessage)>,
        jobs: mpsc::Sender<(ParticipantId, Vec<u8>)>,
    ) {
        while let Some((from, message)) = inbox.recv().await {
            match message {
                MeshMessage::Protocol { instance, payload } => {
                    if !self.deliver(from, instance, payload) {
                        tracing::warn!(peer = %from, "runner: no room for a protocol message; dropped");
                    }
                }
                MeshMessage::Job(body) => {
                    if jobs.try_send((from, body)).is_err() {
                        tracing::warn!(peer = %from, "runner: no room for a job announcement; dropped");
                    }
                }
                MeshMessage::Decline { instance } => {
                    if !self.decline(from, instance) {
                        tracing::warn!(peer = %from, "runner: no room for a decline; dropped");
                    }
                }
                MeshMessage::Heartbeat | MeshMessage::Status(_) => {}
            }
        }
    }
}

/// Drives `protocol` as `me` among `participants` until it returns its output or an error.
/// Every wait is bounded by the protocol's own deadline.
pub async fn run<P: Protocol>(
    protocol: P,
    instance: InstanceId,
    me: ParticipantId,
    participants: &[ParticipantId],
    mesh: &Mesh,
    router: &Router,
) -> Result<P::Output, ProtocolError> {
    run_with(protocol, instance, me, participants, mesh, router, None).await
}

/// Like [`run`], but gives up as soon as a participant has been down (silent on the mesh)
/// for `down_for`: a run that cannot finish should free its node for work that can, rather
/// than wait out its deadline.
pub async fn run_while_up<P: Protocol>(
    protocol: P,
    instance: InstanceId,
    me: ParticipantId,
    participants: &[ParticipantId],
    mesh: &Mesh,
    router: &Router,
    down_for: Duration,
) -> Result<P::Output, ProtocolError> {
    run_with(
        protocol,
        instance,
        me,
        participants,
        mesh,
        router,
        Some(down_for),
    )
    .await
}

async fn run_with<P: Protocol>(
    mut protocol: P,
    instance: InstanceId,
    me: ParticipantId,
    participants: &[ParticipantId],
    mesh: &Mesh,
    router: &Router,
    down_for: Option<Duration>,
) -> Result<P::Output, ProtocolError> {
    let mut inbox = router.register(instance);
    let watch = Liveness {
        mesh,
        participants,
        down_for,
        down_since: None,
    };
    let result = drive(&mut protocol, instance, me, mesh, &mut inbox, watch).await;
    router.unregister(&instance);
    result
}

/// Watches that a run's participants stay up.
struct Liveness<'a> {
    mesh: &'a Mesh,
    participants: &'a [ParticipantId],
    down_for: Option<Duration>,
    down_since: Option<(ParticipantId, Instant)>,
}

impl Liveness<'_> {
    fn check(&mut self, now: Instant) -> Result<(), ProtocolError> {
        let Some(limit) = self.down_for else {
            return Ok(());
        };
        let alive = self.mesh.alive();
        let down = self
            .participants
            .iter()
            .copied()
            .find(|p| alive.binary_search(p).is_err());
        self.down_since = match (down, self.down_since) {
            (None, _) => None,
            (Some(peer), Some((same, since))) if peer == same => Some((same, since)),
            (Some(peer), _) => Some((peer, now)),
        };
        match self.down_since {
            Some((peer, since)) if now.duration_since(since) >= limit => {
                Err(ProtocolError::PeerDown(peer))
            }
            _ => Ok(()),
        }
    }
}

async fn drive<P: Protocol>(
    protocol: &mut P,
    instance: InstanceId,
    me: ParticipantId,
    mesh: &Mesh,
    inbox: &mut mpsc::Receiver<Delivery>,
    mut watch: Liveness<'_>,
) -> Result<P::Output, ProtocolError> {
    let participants = watch.participants;
    loop {
        match protocol.poll(Instant::now())? {
            Step::Send(_) if crate::faults::mute_runs() => {}
            Step::Send(message) => {
                let framed = MeshMessage::Protocol {
                    instance,
                    payload: message.payload,
                };
                let recipients: Vec<ParticipantId> = match message.to {
                    Recipient::All => participants.iter().copied().filter(|&p| p != me).collect(),
                    Recipient::One(peer) => vec![peer],
                };
                for peer in recipients {
                    if let Err(error) = mesh.send(peer, &framed) {
                        // The protocol will time out waiting on that peer if it matters.
                        tracing::warn!(%peer, %error, "runner: message not sent");
                    }
                }
            }
            Step::Done(output) => return Ok(output),
            Step::Wait => {
                tokio::select! {
                    delivery = inbox.recv() => {
                        if let Some((from, inbound)) = delivery {
                            take(protocol, participants, from, inbound)?;
                            // Take everything else already there before polling again.
                            while let Ok((from, inbound)) = inbox.try_recv() {
                                take(protocol, participants, from, inbound)?;
                            }
                        }
                    }
                    _ = tokio::time::sleep(DEADLINE_TICK) => {}
                }
                watch.check(Instant::now())?;
            }
        }
    }
}

/// Hands one delivery to the protocol. A decline ends the run, if it comes from one of its
/// participants (anyone else's is ignored: it cannot hold the run up).
fn take<P: Protocol>(
    protocol: &mut P,
    participants: &[ParticipantId],
    from: ParticipantId,
    inbound: Inbound,
) -> Result<(), ProtocolError> {
    match inbound {
        Inbound::Message(payload) => protocol.receive(from, &payload),
        Inbound::Declined if participants.contains(&from) => Err(ProtocolError::Declined(from)),
        Inbound::Declined => Ok(()),
    }
}
