//! Job announcements: the owner of a triple batch or presignature, or the leader of a
//! signature, tells the other participants what it starts, and they join in. Every run's
//! protocol instance id is the hash of its announcement, so all participants agree on it
//! without another round.
//!
//! An announcement comes from a peer, so it is checked like any outside input
//! ([`Job::check`]): only an asset's owner can announce work on it (a peer cannot make this
//! node spend another owner's triples), and only for the current epoch and participants.

use chainsig_primitives::{ParticipantId, SignatureRequest};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::mesh::message::InstanceId;
use crate::storage::AssetId;

const INSTANCE_DOMAIN: &[u8] = b"chainsig/v1/instance";

/// The largest triple batch a peer may announce.
pub const MAX_TRIPLE_BATCH: u32 = 256;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Job {
    /// `count` triples, ids `first_id..first_id + count` of `owner`.
    Triples {
        epoch: u64,
        owner: ParticipantId,
        first_id: AssetId,
        count: u32,
        participants: Vec<ParticipantId>,
    },
    /// Presignature `id` of `owner` from two of its triples.
    Presignature {
        epoch: u64,
        owner: ParticipantId,
        id: AssetId,
        triples: [AssetId; 2],
        participants: Vec<ParticipantId>,
    },
    /// A signature for `request` with `leader`'s presignature `presignature`.
    Sign {
        epoch: u64,
        leader: ParticipantId,
        presignature: AssetId,
        request: SignatureRequest,
        /// The block that carried the request and its random value, which every
        /// participant must have seen itself.
        height: u64,
        entropy: [u8; 32],
        participants: Vec<ParticipantId>,
    },
    /// Key generation among the contract's initial candidates in key event attempt
    /// `attempt`, announced by that attempt's leader once every candidate is up. One run per
    /// attempt; `nonce` makes its instance id unpredictable.
    Keygen {
        participants: Vec<ParticipantId>,
        threshold: usize,
        attempt: u64,
        nonce: u64,
    },
    /// The same root key moved to the new participants, epoch `new_epoch`, in reshare attempt
    /// `attempt`, announced by that attempt's leader. `contributors` are the old participants
    /// (all in the new set too) whose old shares rebuild the key: those the leader saw up and
    /// serving `old_epoch`; every other member of the new set takes part as a newcomer.
    Reshare {
        old_epoch: u64,
        new_epoch: u64,
        attempt: u64,
        contributors: Vec<ParticipantId>,
        participants: Vec<ParticipantId>,
        threshold: usize,
        nonce: u64,
    },
}

/// A job with the exact bytes that announce it (the instance id hashes those bytes).
#[derive(Debug, Clone)]
pub struct Announcement {
    pub job: Job,
    pub body: Vec<u8>,
}

impl Announcement {
    /// This node's own job.
    pub fn new(job: Job) -> Self {
        let body = job.encode();
        Self { job, body }
    }

    /// A peer's announcement, as received.
    pub fn received(body: Vec<u8>) -> Result<Self, JobError> {
        Ok(Self {
            job: Job::decode(&body)?,
            body,
        })
    }

    pub fn instance(&self) -> InstanceId {
        Job::instance(&self.body)
    }
}

/// Why a peer's announcement is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error("announcement does not parse: {0}")]
    Malformed(String),
    #[error("epoch {0} is not the current one")]
    Epoch(u64),
    #[error("announced by {sender}, but {owner} owns it")]
    NotOwner {
        sender: ParticipantId,
        owner: ParticipantId,
    },
    #[error("bad participant set: {0}")]
    Participants(&'static str),
    #[error("batch of {0} triples is too large")]
    BatchSize(u32),
}

/// What an announcement is checked against: this node's view of the current epoch.
pub struct Membership<'a> {
    pub epoch: u64,
    pub me: ParticipantId,
    /// The current participants, sorted.
    pub participants: &'a [ParticipantId],
    pub threshold: usize,
}

impl Job {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("jobs serialize to JSON")
    }

    /// One line about the job for the log: its kind, epoch, owner and asset (and request).
    pub fn summary(&self) -> String {
        match self {
            Job::Triples {
                epoch,
                owner,
                first_id,
                count,
                ..
            } => format!("triples {owner}/{first_id}+{count} of epoch {epoch}"),
            Job::Presignature {
                epoch, owner, id, ..
            } => format!("presignature {owner}/{id} of epoch {epoch}"),
            Job::Sign {
                epoch,
                leader,
                presignature,
                request,
                height,
                ..
            } => format!(
                "signature of request {} (block {height}) by {leader} with presignature {presignature}, epoch {epoch}",
                hex::encode(&crate::leader::request_id(request)[..4])
            ),
            Job::Keygen { attempt, .. } => format!("key generation, attempt {attempt}"),
            Job::Reshare {
                new_epoch, attempt, ..
            } => format!("reshare into epoch {new_epoch}, attempt {attempt}"),
        }
    }

    pub fn decode(body: &[u8]) -> Result<Self, JobError> {
        serde_json::from_slice(body).map_err(|e| JobError::Malformed(e.to_string()))
    }

    /// The run's protocol instance: the hash of the announcement's bytes.
    pub fn instance(body: &[u8]) -> InstanceId {
        InstanceId(
            Sha256::new()
                .chain_update(INSTANCE_DOMAIN)
                .chain_update(body)
                .finalize()
                .into(),
        )
    }

    /// Checks an announcement `sender` made against this node's membership.
    pub fn check(&self, sender: ParticipantId, members: &Membership<'_>) -> Result<(), JobError> {
        let (epoch, owner, participants) = match self {
            // Checked against the contract's candidates by the coordinator, not a session.
            Job::Keygen { .. } | Job::Reshare { .. } => return Ok(()),
            Job::Triples {
                epoch,
                owner,
                count,
                participants,
                ..
            } => {
                if *count == 0 || *count > MAX_TRIPLE_BATCH {
                    return Err(JobError::BatchSize(*count));
                }
                (*epoch, *owner, participants)
            }
            Job::Presignature {
                epoch,
                owner,
                participants,
                ..
            } => (*epoch, *owner, participants),
            Job::Sign {
                epoch,
                leader,
                participants,
                ..
            } => (*epoch, *leader, participants),
        };
        if epoch != members.epoch {
            return Err(JobError::Epoch(epoch));
        }
        if owner != sender {
            return Err(JobError::NotOwner { sender, owner });
        }
        check_participants(participants, sender, members)
    }
}

fn check_participants(
    participants: &[ParticipantId],
    sender: ParticipantId,
    members: &Membership<'_>,
) -> Result<(), JobError> {
    if !participants.windows(2).all(|w| w[0] < w[1]) {
        return Err(JobError::Participants("not sorted and distinct"));
    }
    if participants.len() < members.threshold {
        return Err(JobError::Participants("fewer than the threshold"));
    }
    if participants
        .iter()
        .any(|p| members.participants.binary_search(p).is_err())
    {
        return Err(JobError::Participants(
            "includes someone who is not a participant",
        ));
    }
    if participants.binary_search(&members.me).is_err() {
        return Err(JobError::Participants("does not include this node"));
    }
    if participants.binary_search(&sender).is_err() {
        return Err(JobError::Participants("does not include its sender"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[u32]) -> Vec<ParticipantId> {
        list.iter().copied().map(ParticipantId).collect()
    }

    fn triples(owner: u32, participants: &[u32]) -> Job {
        Job::Triples {
            epoch: 0,
            owner: ParticipantId(owner),
            first_id: 10,
            count: 4,
            participants: ids(participants),
        }
    }

    fn check(job: &Job, sender: u32, me: u32) -> Result<(), JobError> {
        let all = ids(&[0, 1, 2]);
        job.check(
            ParticipantId(sender),
            &Membership {
                epoch: 0,
                me: ParticipantId(me),
                participants: &all,
                threshold: 2,
            },
        )
    }

    #[test]
    fn an_owners_announcement_passes_and_round_trips() {
        let job = triples(0, &[0, 1, 2]);
        assert_eq!(check(&job, 0, 1), Ok(()));
        let body = job.encode();
        assert_eq!(Job::decode(&body).unwrap(), job);
        assert_eq!(Job::instance(&body), Job::instance(&job.encode()));
    }

    #[test]
    fn only_the_owner_may_announce() {
        assert!(matches!(
            check(&triples(0, &[0, 1, 2]), 2, 1),
            Err(JobError::NotOwner { .. })
        ));
    }

    #[test]
    fn bad_sets_and_epochs_are_refused() {
        assert!(
            check(&triples(0, &[0, 3]), 0, 0).is_err(),
            "3 is no participant"
        );
        assert!(check(&triples(0, &[1, 0]), 0, 1).is_err(), "unsorted");
        assert!(check(&triples(0, &[0]), 0, 0).is_err(), "below threshold");
        assert!(check(&triples(0, &[0, 2]), 0, 1).is_err(), "not for me");
        assert!(
            check(&triples(0, &[1, 2]), 0, 1).is_err(),
            "sender not in it"
        );
        let mut stale = triples(0, &[0, 1]);
        if let Job::Triples { epoch, .. } = &mut stale {
            *epoch = 7;
        }
        assert_eq!(check(&stale, 0, 1), Err(JobError::Epoch(7)));
        let mut huge = triples(0, &[0, 1]);
        if let Job::Triples { count, .. } = &mut huge {
            *count = MAX_TRIPLE_BATCH + 1;
        }
        assert!(check(&huge, 0, 1).is_err());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(matches!(
            Job::decode(b"\xff{not json"),
            Err(JobError::Malformed(_))
        ));
    }
}
