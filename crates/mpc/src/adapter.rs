//! Runs a `cait-sith` protocol behind our [`Protocol`] interface and stands between it and
//! the network: `cait-sith` trusts its input (it drops short messages silently, keeps every
//! message it is given, and was not written against hostile peers), so every message is
//! checked here first and every call into it is guarded.

use std::collections::{BTreeMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use cait_sith::protocol::{Action, Participant, Protocol as CsProtocol};
use chainsig_primitives::ParticipantId;

use crate::error::ProtocolError;
use crate::protocol::{Deadline, Limits, Outgoing, Protocol, Recipient, Step};

/// Every `cait-sith` message starts with a channel tag (20 bytes) and a waitpoint (8 bytes).
/// An honest peer never sends two messages with the same header, so a repeat is refused.
const HEADER_LEN: usize = 28;

pub(crate) fn to_cs(id: ParticipantId) -> Participant {
    Participant::from(id.0)
}

pub(crate) fn from_cs(p: Participant) -> ParticipantId {
    ParticipantId(u32::from(p))
}

pub(crate) fn to_cs_list(ids: &[ParticipantId]) -> Vec<Participant> {
    ids.iter().copied().map(to_cs).collect()
}

/// Turns `cait-sith`'s result into ours, once, when the protocol finishes.
type Conversion<T, U> = Box<dyn FnOnce(T) -> Result<U, ProtocolError> + Send>;

enum State {
    Running,
    Finished,
    Failed(ProtocolError),
}

/// A `cait-sith` protocol instance with input checks, a deadline and a result conversion.
pub struct CaitSith<T, U> {
    inner: Box<dyn CsProtocol<Output = T> + Send>,
    convert: Option<Conversion<T, U>>,
    me: ParticipantId,
    limits: Limits,
    deadline: Deadline,
    state: State,
    /// Bytes received from each peer; also the set of peers this instance talks to.
    received: BTreeMap<ParticipantId, usize>,
    headers_seen: HashSet<(ParticipantId, [u8; HEADER_LEN])>,
    /// Peers whose messages arrived since the last `Wait`: whoever broke the protocol is
    /// among them.
    unprocessed_from: Vec<ParticipantId>,
}

impl<T: 'static, U> CaitSith<T, U> {
    pub(crate) fn new(
        inner: impl CsProtocol<Output = T> + Send + 'static,
        participants: &[ParticipantId],
        me: ParticipantId,
        limits: Limits,
        convert: impl FnOnce(T) -> Result<U, ProtocolError> + Send + 'static,
    ) -> Self {
        let received = participants
            .iter()
            .filter(|&&p| p != me)
            .map(|&p| (p, 0))
            .collect();
        Self {
            inner: Box::new(inner),
            convert: Some(Box::new(convert)),
            me,
            limits,
            deadline: Deadline::new(limits.timeout),
            state: State::Running,
            received,
            headers_seen: HashSet::new(),
            unprocessed_from: Vec::new(),
        }
    }

    fn fail(&mut self, error: ProtocolError) -> ProtocolError {
        self.state = State::Failed(error.clone());
        error
    }

    fn check_state(&self) -> Result<(), ProtocolError> {
        match &self.state {
            State::Running => Ok(()),
            State::Finished => Err(ProtocolError::AlreadyFinished),
            State::Failed(error) => Err(error.clone()),
        }
    }

    /// Everything that can be checked about a message without understanding it.
    fn admit(&mut self, from: ParticipantId, message: &[u8]) -> Result<(), ProtocolError> {
        let Some(total) = self.received.get_mut(&from) else {
            return Err(ProtocolError::UnknownPeer(from));
        };
        if message.len() > self.limits.max_message_bytes {
            return Err(ProtocolError::Oversized {
                peer: from,
                size: message.len(),
                limit: self.limits.max_message_bytes,
            });
        }
        *total += message.len();
        if *total > self.limits.max_bytes_per_peer {
            return Err(ProtocolError::Flood {
                peer: from,
                limit: self.limits.max_bytes_per_peer,
            });
        }
        let Some(header) = message.get(..HEADER_LEN) else {
            return Err(ProtocolError::Malformed {
                peer: from,
                reason: format!("{} bytes is shorter than a message header", message.len()),
            });
        };
        let header: [u8; HEADER_LEN] = header.try_into().expect("slice has header length");
        if !self.headers_seen.insert((from, header)) {
            return Err(ProtocolError::Duplicate { peer: from });
        }
        Ok(())
    }

    /// The peers that sent the least: on a timeout, the ones most likely holding it up.
    fn laggards(&self) -> Vec<ParticipantId> {
        let least = self.received.values().copied().min().unwrap_or(0);
        let most = self.received.values().copied().max().unwrap_or(0);
        if least == most {
            return self.received.keys().copied().collect();
        }
        self.received
            .iter()
            .filter(|(_, &bytes)| bytes == least)
            .map(|(&peer, _)| peer)
            .collect()
    }

    fn suspect(&self) -> Option<ParticipantId> {
        let first = *self.unprocessed_from.first()?;
        self.unprocessed_from
            .iter()
            .all(|&p| p == first)
            .then_some(first)
    }

    fn finish(&mut self, output: T) -> Result<Step<U>, ProtocolError> {
        self.state = State::Finished;
        let convert = self
            .convert
            .take()
            .expect("a running protocol still has its conversion");
        match convert(output) {
            Ok(result) => Ok(Step::Done(result)),
            Err(error) => Err(self.fail(error)),
        }
    }
}

impl<T: 'static, U> Protocol for CaitSith<T, U> {
    type Output = U;

    fn receive(&mut self, from: ParticipantId, message: &[u8]) -> Result<(), ProtocolError> {
        self.check_state()?;
        if let Err(error) = self.admit(from, message) {
            return Err(self.fail(error));
        }
        let inner = &mut self.inner;
        let delivered = catch_unwind(AssertUnwindSafe(|| {
            inner.message(to_cs(from), message.to_vec())
        }));
        if delivered.is_err() {
            return Err(self.fail(ProtocolError::Malformed {
                peer: from,
                reason: "the message broke the protocol state".into(),
            }));
        }
        self.unprocessed_from.push(from);
        Ok(())
    }

    fn poll(&mut self, now: Instant) -> Result<Step<U>, ProtocolError> {
        self.check_state()?;
        let inner = &mut self.inner;
        let action = match catch_unwind(AssertUnwindSafe(|| inner.poke())) {
            Ok(Ok(action)) => action,
            Ok(Err(error)) => {
                let suspect = self.suspect();
                return Err(self.fail(ProtocolError::Failed {
                    reason: error.to_string(),
                    suspect,
                }));
            }
            Err(_) => {
                let suspect = self.suspect();
                return Err(self.fail(ProtocolError::Failed {
                    reason: "the protocol hit an internal error".into(),
                    suspect,
                }));
            }
        };
        match action {
            Action::Wait => {
                self.unprocessed_from.clear();
                if let Some(after) = self.deadline.expired(now) {
                    let waiting_on = self.laggards();
                    return Err(self.fail(ProtocolError::Timeout { after, waiting_on }));
                }
                Ok(Step::Wait)
            }
            Action::SendMany(payload) => Ok(Step::Send(Outgoing {
                to: Recipient::All,
                payload,
            })),
            Action::SendPrivate(to, payload) => {
                debug_assert_ne!(from_cs(to), self.me);
                Ok(Step::Send(Outgoing {
                    to: Recipient::One(from_cs(to)),
                    payload,
                }))
            }
            Action::Return(output) => self.finish(output),
        }
    }
}
