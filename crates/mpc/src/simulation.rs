//! Runs every party of a protocol in one process, with a deterministic message router that
//! can also misbehave: drop, delay, reorder, truncate, corrupt or duplicate messages. The
//! tests use it to run whole protocols and to attack them; the benchmarks use it to measure
//! each party's CPU time and bytes sent.
//!
//! Time is simulated: every delivery advances the clock by one millisecond, and when nothing
//! is in flight the clock jumps ahead by [`Simulation::IDLE_TICK`], so timeouts fire without
//! the test waiting for them. Given a seed, the order of deliveries is always the same.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use chainsig_primitives::ParticipantId;
use cpu_time::ThreadTime;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::error::ProtocolError;
use crate::protocol::{Protocol, Recipient, Step};

/// One message on its way from one party to another.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub from: ParticipantId,
    pub to: ParticipantId,
    pub payload: Vec<u8>,
}

/// What the router does with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Deliver,
    Drop,
    /// Deliver after this many other deliveries.
    Delay(u32),
    /// Deliver only the first `n` bytes.
    Truncate(usize),
    /// Flip bits of the byte at this index (taken modulo the length).
    Corrupt {
        index: usize,
        mask: u8,
    },
    /// Deliver twice.
    Duplicate,
}

/// Decides each message's fate; gets the router's seeded generator for random choices.
pub type FaultPlan = Box<dyn FnMut(&Envelope, &mut ChaCha20Rng) -> Fate>;

/// What one party spent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartyStats {
    /// CPU time of this thread inside this party's `receive` and `poll` calls: what the
    /// party itself costs, whatever else the machine is doing.
    pub cpu: Duration,
    /// Bytes this party sent, counting a broadcast once per recipient.
    pub bytes_sent: u64,
    pub messages_sent: u64,
    /// The largest single message this party sent.
    pub largest_message: usize,
}

/// How a simulation ended: each party's result or error, and what each spent.
#[derive(Debug)]
pub struct Report<T> {
    pub outputs: BTreeMap<ParticipantId, T>,
    pub failures: BTreeMap<ParticipantId, ProtocolError>,
    pub stats: BTreeMap<ParticipantId, PartyStats>,
    pub simulated_time: Duration,
}

impl<T> Report<T> {
    /// Every party's output, or the first failure.
    pub fn into_result(self) -> Result<BTreeMap<ParticipantId, T>, (ParticipantId, ProtocolError)> {
        match self.failures.into_iter().next() {
            Some(failure) => Err(failure),
            None => Ok(self.outputs),
        }
    }
}

pub struct Simulation<P: Protocol> {
    parties: BTreeMap<ParticipantId, P>,
    report: Report<P::Output>,
    ready: VecDeque<Envelope>,
    delayed: Vec<(u64, Envelope)>,
    rng: ChaCha20Rng,
    faults: Option<FaultPlan>,
    reorder: bool,
    start: Instant,
    deliveries: u64,
    max_simulated_time: Duration,
}

impl<P: Protocol> Simulation<P> {
    /// How far the clock jumps when no message is in flight.
    pub const IDLE_TICK: Duration = Duration::from_secs(1);

    pub fn new(parties: impl IntoIterator<Item = (ParticipantId, P)>, seed: u64) -> Self {
        Self {
            parties: parties.into_iter().collect(),
            report: Report {
                outputs: BTreeMap::new(),
                failures: BTreeMap::new(),
                stats: BTreeMap::new(),
                simulated_time: Duration::ZERO,
            },
            ready: VecDeque::new(),
            delayed: Vec::new(),
            rng: ChaCha20Rng::seed_from_u64(seed),
            faults: None,
            reorder: false,
            start: Instant::now(),
            deliveries: 0,
            max_simulated_time: Duration::from_secs(3600),
        }
    }

    pub fn with_faults(mut self, plan: FaultPlan) -> Self {
        self.faults = Some(plan);
        self
    }

    /// Delivers messages in a random (seeded) order instead of first-in, first-out.
    pub fn with_reordering(mut self) -> Self {
        self.reorder = true;
        self
    }

    /// Gives up (every unfinished party is reported as timed out) after this much simulated
    /// time; protocols normally time out on their own well before.
    pub fn with_max_simulated_time(mut self, limit: Duration) -> Self {
        self.max_simulated_time = limit;
        self
    }

    fn now(&self) -> Instant {
        self.start + self.report.simulated_time
    }

    fn is_live(&self, party: ParticipantId) -> bool {
        self.parties.contains_key(&party)
            && !self.report.outputs.contains_key(&party)
            && !self.report.failures.contains_key(&party)
    }

    /// Polls one party until it waits, finishes or fails, then routes what it sent. The
    /// party's CPU time covers `work` (e.g. receiving a message) and the polls, not routing.
    fn drive(
        &mut self,
        party: ParticipantId,
        work: impl FnOnce(&mut P) -> Result<(), ProtocolError>,
    ) {
        if !self.is_live(party) {
            return;
        }
        let now = self.now();
        let protocol = self.parties.get_mut(&party).expect("live party exists");
        let started = ThreadTime::now();
        let mut sent = Vec::new();
        let outcome = work(protocol).and_then(|()| loop {
            match protocol.poll(now)? {
                Step::Send(message) => sent.push(message),
                Step::Wait => return Ok(None),
                Step::Done(output) => return Ok(Some(output)),
            }
        });
        self.report.stats.entry(party).or_default().cpu += started.elapsed();
        for message in sent {
            self.route(party, message.to, message.payload);
        }
        match outcome {
            Ok(None) => {}
            Ok(Some(output)) => {
                self.report.outputs.insert(party, output);
            }
            Err(error) => {
                self.report.failures.insert(party, error);
            }
        }
    }

    fn route(&mut self, from: ParticipantId, to: Recipient, payload: Vec<u8>) {
        let recipients: Vec<ParticipantId> = match to {
            Recipient::All => self
                .parties
                .keys()
                .copied()
                .filter(|&p| p != from)
                .collect(),
            Recipient::One(peer) => vec![peer],
        };
        let stats = self.report.stats.entry(from).or_default();
        stats.messages_sent += recipients.len() as u64;
        stats.bytes_sent += (payload.len() * recipients.len()) as u64;
        stats.largest_message = stats.largest_message.max(payload.len());
        for to in recipients {
            self.dispatch(Envelope {
                from,
                to,
                payload: payload.clone(),
            });
        }
    }

    fn dispatch(&mut self, mut envelope: Envelope) {
        let fate = match self.faults.as_mut() {
            Some(plan) => plan(&envelope, &mut self.rng),
            None => Fate::Deliver,
        };
        match fate {
            Fate::Deliver => self.ready.push_back(envelope),
            Fate::Drop => {}
            Fate::Delay(steps) => self
                .delayed
                .push((self.deliveries + u64::from(steps), envelope)),
            Fate::Truncate(len) => {
                envelope.payload.truncate(len);
                self.ready.push_back(envelope);
            }
            Fate::Corrupt { index, mask } => {
                if !envelope.payload.is_empty() {
                    let at = index % envelope.payload.len();
                    envelope.payload[at] ^= mask.max(1);
                }
                self.ready.push_back(envelope);
            }
            Fate::Duplicate => {
                self.ready.push_back(envelope.clone());
                self.ready.push_back(envelope);
            }
        }
    }

    fn release_delayed(&mut self) {
        let deliveries = self.deliveries;
        let (due, waiting): (Vec<_>, Vec<_>) = self
            .delayed
            .drain(..)
            .partition(|(at, _)| *at <= deliveries);
        self.delayed = waiting;
        self.ready
            .extend(due.into_iter().map(|(_, envelope)| envelope));
    }

    fn next_envelope(&mut self) -> Option<Envelope> {
        if self.ready.is_empty() && !self.delayed.is_empty() {
            // Nothing else to deliver: the delayed messages are due now.
            self.deliveries = self.delayed.iter().map(|(at, _)| *at).min().unwrap_or(0);
            self.release_delayed();
        }
        if self.reorder && self.ready.len() > 1 {
            let index = (self.rng.next_u64() % self.ready.len() as u64) as usize;
            return self.ready.remove(index);
        }
        self.ready.pop_front()
    }

    fn deliver(&mut self, envelope: Envelope) {
        self.deliveries += 1;
        self.report.simulated_time += Duration::from_millis(1);
        self.release_delayed();
        let Envelope { from, to, payload } = envelope;
        self.drive(to, |protocol| protocol.receive(from, &payload));
    }

    fn all_settled(&self) -> bool {
        self.parties.keys().all(|&p| !self.is_live(p))
    }

    /// Runs until every party has finished or failed.
    pub fn run(mut self) -> Report<P::Output> {
        let parties: Vec<ParticipantId> = self.parties.keys().copied().collect();
        for &party in &parties {
            self.drive(party, |_| Ok(()));
        }
        while !self.all_settled() {
            if let Some(envelope) = self.next_envelope() {
                self.deliver(envelope);
                continue;
            }
            // Nothing in flight: let time pass so that waiting parties can time out.
            if self.report.simulated_time >= self.max_simulated_time {
                self.give_up(&parties);
                break;
            }
            self.report.simulated_time += Self::IDLE_TICK;
            for &party in &parties {
                self.drive(party, |_| Ok(()));
            }
        }
        self.report
    }

    fn give_up(&mut self, parties: &[ParticipantId]) {
        for &party in parties {
            if self.is_live(party) {
                self.report.failures.insert(
                    party,
                    ProtocolError::Timeout {
                        after: self.report.simulated_time,
                        waiting_on: Vec::new(),
                    },
                );
            }
        }
    }
}

/// Runs all parties with a perfect network.
pub fn run_honest<P: Protocol>(
    parties: impl IntoIterator<Item = (ParticipantId, P)>,
) -> Result<BTreeMap<ParticipantId, P::Output>, (ParticipantId, ProtocolError)> {
    Simulation::new(parties, 0).run().into_result()
}
