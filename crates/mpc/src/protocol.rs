//! The one interface every protocol of the engine implements.

use std::time::{Duration, Instant};

use chainsig_primitives::ParticipantId;

use crate::error::ProtocolError;

/// Who a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Recipient {
    /// Every other participant of this protocol instance.
    All,
    /// One participant; the message is private to it (the mesh must encrypt it in transit).
    One(ParticipantId),
}

/// A message the protocol wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub to: Recipient,
    pub payload: Vec<u8>,
}

/// What a protocol wants next.
#[derive(Debug)]
pub enum Step<T> {
    /// Send this message, then poll again.
    Send(Outgoing),
    /// Nothing to do until a message arrives (or time passes: poll again to see a timeout).
    Wait,
    /// Finished with this result; the instance is spent.
    Done(T),
}

/// One participant's side of a protocol, driven from outside.
///
/// Callers feed every message a peer sent with [`receive`](Protocol::receive) and then
/// [`poll`](Protocol::poll) until it returns `Wait` or `Done`. `now` is the caller's clock:
/// the protocol's deadline counts from the first poll.
pub trait Protocol {
    type Output;

    /// Hands the protocol one message from `from`. Errors are final and name the peer.
    fn receive(&mut self, from: ParticipantId, message: &[u8]) -> Result<(), ProtocolError>;

    /// Advances the protocol as far as it can go without new messages.
    fn poll(&mut self, now: Instant) -> Result<Step<Self::Output>, ProtocolError>;
}

/// A protocol behind a box, so that callers can keep different protocols in one place.
pub type BoxedProtocol<T> = Box<dyn Protocol<Output = T> + Send>;

impl<P: Protocol + ?Sized> Protocol for Box<P> {
    type Output = P::Output;

    fn receive(&mut self, from: ParticipantId, message: &[u8]) -> Result<(), ProtocolError> {
        (**self).receive(from, message)
    }

    fn poll(&mut self, now: Instant) -> Result<Step<Self::Output>, ProtocolError> {
        (**self).poll(now)
    }
}

/// Bounds on what one protocol instance accepts: how long it waits, how large one message
/// may be and how many bytes one peer may send in all. The defaults of each protocol are a
/// few times what an honest peer sends (measured by the engine benchmark), so a flood from a
/// faulty peer ends the instance with an error long before it costs memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub timeout: Duration,
    pub max_message_bytes: usize,
    pub max_bytes_per_peer: usize,
}

impl Limits {
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }

    /// The limits of a batch of `count` instances, each within `self`.
    pub fn scaled(self, count: usize) -> Self {
        Self {
            timeout: self.timeout,
            max_message_bytes: self.max_message_bytes.saturating_mul(count.max(1)),
            max_bytes_per_peer: self.max_bytes_per_peer.saturating_mul(count.max(1)),
        }
    }
}

/// Tracks a deadline that starts at the first poll.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    timeout: Duration,
    started: Option<Instant>,
}

impl Deadline {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            started: None,
        }
    }

    /// Starts the clock if it has not started; returns how long ago it started if that is
    /// past the timeout.
    pub(crate) fn expired(&mut self, now: Instant) -> Option<Duration> {
        let started = *self.started.get_or_insert(now);
        let elapsed = now.saturating_duration_since(started);
        (elapsed >= self.timeout).then_some(elapsed)
    }
}
