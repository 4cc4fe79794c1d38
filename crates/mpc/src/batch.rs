//! Runs many instances of one protocol among the same participants as a single protocol:
//! each step, whatever the instances want to send to one destination goes out as one
//! message. Used for triples, which are generated in bulk.
//!
//! Wire format of a batch message: a sequence of frames `index: u32 LE, length: u32 LE,
//! bytes`, one per instance that had something for that destination.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use chainsig_primitives::ParticipantId;

use crate::error::ProtocolError;
use crate::protocol::{Outgoing, Protocol, Recipient, Step};

const FRAME_HEADER: usize = 8;

pub struct Batch<P: Protocol> {
    instances: Vec<P>,
    outputs: Vec<Option<P::Output>>,
    /// Instances that got a message since they were last polled: only they can have moved.
    touched: Vec<bool>,
    outbox: VecDeque<Outgoing>,
    max_message_bytes: usize,
    failed: Option<ProtocolError>,
    done: bool,
}

impl<P: Protocol> Batch<P> {
    /// `max_message_bytes` bounds one batch message; each instance checks its own frames.
    pub fn new(instances: Vec<P>, max_message_bytes: usize) -> Result<Self, ProtocolError> {
        if instances.is_empty() {
            return Err(ProtocolError::BadParameters(
                "a batch needs at least one instance".into(),
            ));
        }
        let outputs = instances.iter().map(|_| None).collect();
        Ok(Self {
            touched: vec![true; instances.len()],
            instances,
            outputs,
            outbox: VecDeque::new(),
            max_message_bytes,
            failed: None,
            done: false,
        })
    }

    fn fail(&mut self, error: ProtocolError) -> ProtocolError {
        self.failed = Some(error.clone());
        error
    }

    fn check_state(&self) -> Result<(), ProtocolError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if self.done {
            return Err(ProtocolError::AlreadyFinished);
        }
        Ok(())
    }

    /// Polls the unfinished instances that got messages (all of them when none did, so that
    /// their deadlines are checked) until they wait, bundling what they send.
    fn collect_outgoing(&mut self, now: Instant) -> Result<(), ProtocolError> {
        let mut bundles: BTreeMap<Option<ParticipantId>, Vec<u8>> = BTreeMap::new();
        let poll_all = !self.touched.contains(&true);
        for (index, instance) in self.instances.iter_mut().enumerate() {
            let touched = std::mem::take(&mut self.touched[index]);
            if self.outputs[index].is_some() || !(touched || poll_all) {
                continue;
            }
            loop {
                match instance.poll(now)? {
                    Step::Send(message) => {
                        let key = match message.to {
                            Recipient::All => None,
                            Recipient::One(peer) => Some(peer),
                        };
                        push_frame(bundles.entry(key).or_default(), index, &message.payload);
                    }
                    Step::Wait => break,
                    Step::Done(output) => {
                        self.outputs[index] = Some(output);
                        break;
                    }
                }
            }
        }
        self.outbox
            .extend(bundles.into_iter().map(|(key, payload)| Outgoing {
                to: key.map_or(Recipient::All, Recipient::One),
                payload,
            }));
        Ok(())
    }
}

fn push_frame(buffer: &mut Vec<u8>, index: usize, payload: &[u8]) {
    buffer.reserve(FRAME_HEADER + payload.len());
    buffer.extend_from_slice(&(index as u32).to_le_bytes());
    buffer.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buffer.extend_from_slice(payload);
}

/// Splits a batch message into `(instance index, bytes)` frames.
fn split_frames(
    from: ParticipantId,
    mut message: &[u8],
    instances: usize,
) -> Result<Vec<(usize, &[u8])>, ProtocolError> {
    let malformed = |reason: String| ProtocolError::Malformed { peer: from, reason };
    let mut frames = Vec::new();
    while !message.is_empty() {
        let (header, rest) = message
            .split_at_checked(FRAME_HEADER)
            .ok_or_else(|| malformed("truncated batch frame header".into()))?;
        let index = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let length = u32::from_le_bytes(header[4..].try_into().expect("4 bytes")) as usize;
        if index >= instances {
            return Err(malformed(format!(
                "batch frame for instance {index} of {instances}"
            )));
        }
        let (payload, rest) = rest
            .split_at_checked(length)
            .ok_or_else(|| malformed("batch frame longer than the message".into()))?;
        frames.push((index, payload));
        message = rest;
    }
    if frames.is_empty() {
        return Err(malformed("empty batch message".into()));
    }
    Ok(frames)
}

impl<P: Protocol> Protocol for Batch<P> {
    type Output = Vec<P::Output>;

    fn receive(&mut self, from: ParticipantId, message: &[u8]) -> Result<(), ProtocolError> {
        self.check_state()?;
        if message.len() > self.max_message_bytes {
            return Err(self.fail(ProtocolError::Oversized {
                peer: from,
                size: message.len(),
                limit: self.max_message_bytes,
            }));
        }
        let frames = split_frames(from, message, self.instances.len());
        let delivered = frames.and_then(|frames| {
            frames.into_iter().try_for_each(|(index, payload)| {
                // An instance that has its result needs nothing more; a peer that is a step
                // behind may still send to it, which is harmless.
                if self.outputs[index].is_some() {
                    return Ok(());
                }
                self.touched[index] = true;
                self.instances[index].receive(from, payload)
            })
        });
        delivered.map_err(|error| self.fail(error))
    }

    fn poll(&mut self, now: Instant) -> Result<Step<Self::Output>, ProtocolError> {
        self.check_state()?;
        if self.outbox.is_empty() {
            if let Err(error) = self.collect_outgoing(now) {
                return Err(self.fail(error));
            }
        }
        if let Some(message) = self.outbox.pop_front() {
            return Ok(Step::Send(message));
        }
        if self.outputs.iter().all(Option::is_some) {
            self.done = true;
            return Ok(Step::Done(
                self.outputs.iter_mut().filter_map(Option::take).collect(),
            ));
        }
        Ok(Step::Wait)
    }
}
