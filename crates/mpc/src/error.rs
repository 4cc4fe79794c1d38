use std::time::Duration;

use chainsig_primitives::ParticipantId;
use thiserror::Error;

/// Why a protocol instance stopped. Once an instance has failed it stays failed: every
/// further call returns the same error. Errors caused by a peer name that peer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    #[error("cannot start protocol: {0}")]
    BadParameters(String),
    #[error("message from {0}, who is not a participant of this protocol")]
    UnknownPeer(ParticipantId),
    #[error("message from {peer} is {size} bytes; the limit is {limit}")]
    Oversized {
        peer: ParticipantId,
        size: usize,
        limit: usize,
    },
    #[error("{peer} sent more than the {limit} bytes this protocol may need from one peer")]
    Flood { peer: ParticipantId, limit: usize },
    #[error("malformed message from {peer}: {reason}")]
    Malformed { peer: ParticipantId, reason: String },
    #[error("{peer} sent the same protocol message twice")]
    Duplicate { peer: ParticipantId },
    #[error("protocol failed: {reason}{}", suspect_text(.suspect))]
    Failed {
        reason: String,
        suspect: Option<ParticipantId>,
    },
    #[error("protocol timed out after {:?}, still waiting on {waiting_on:?}", .after)]
    Timeout {
        after: Duration,
        waiting_on: Vec<ParticipantId>,
    },
    #[error("protocol already finished")]
    AlreadyFinished,
    /// The transport gave up on a participant (its connection closed, or it fell silent):
    /// the run cannot finish without it.
    #[error("{0} is down")]
    PeerDown(ParticipantId),
    /// A participant said it cannot take part (it lacks its share of the presignature or
    /// triples the run consumes, say after a crash): the run cannot finish, and waiting out
    /// its timeout would only delay the retry.
    #[error("{0} declined the run: it lacks what the run needs")]
    Declined(ParticipantId),
}

fn suspect_text(suspect: &Option<ParticipantId>) -> String {
    match suspect {
        Some(peer) => format!(" (after a message from {peer})"),
        None => String::new(),
    }
}

impl ProtocolError {
    /// The peer whose message broke a rule by itself (wrong size, garbage, a repeat): that
    /// peer is at fault.
    pub fn peer(&self) -> Option<ParticipantId> {
        match self {
            ProtocolError::UnknownPeer(peer)
            | ProtocolError::Oversized { peer, .. }
            | ProtocolError::Flood { peer, .. }
            | ProtocolError::Malformed { peer, .. }
            | ProtocolError::Duplicate { peer } => Some(*peer),
            _ => None,
        }
    }

    /// The peer after whose message a cryptographic check failed. Only a lead, not a
    /// verdict: when parties disagree (say, on what one of them broadcast), the check fails
    /// at whichever message shows the disagreement, which may come from an honest peer.
    pub fn suspect(&self) -> Option<ParticipantId> {
        match self {
            ProtocolError::Failed { suspect, .. } => *suspect,
            other => other.peer(),
        }
    }

    /// The participants a failed run points at: the one that broke a rule or after whose
    /// message a check failed, the ones it was still waiting on, the one that went down.
    /// What a node may use to leave them out of its next runs for a while, not proof.
    pub fn blamed(&self) -> Vec<ParticipantId> {
        match self {
            ProtocolError::Timeout { waiting_on, .. } => waiting_on.clone(),
            // Declining is blamed too: after a crash a node declines the few runs whose shares
            // it lost, which costs it one short back-off, while a peer that declined every run
            // would otherwise burn its leaders' presignatures one after another.
            ProtocolError::PeerDown(peer) | ProtocolError::Declined(peer) => vec![*peer],
            ProtocolError::UnknownPeer(_) => Vec::new(),
            other => other.suspect().into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_blames_whom_it_waited_on_or_who_broke_it() {
        let (a, b) = (ParticipantId(1), ParticipantId(2));
        let timeout = ProtocolError::Timeout {
            after: Duration::from_secs(1),
            waiting_on: vec![a, b],
        };
        assert_eq!(timeout.blamed(), vec![a, b]);
        assert_eq!(ProtocolError::PeerDown(a).blamed(), vec![a]);
        assert_eq!(ProtocolError::Declined(b).blamed(), vec![b]);
        assert_eq!(ProtocolError::Duplicate { peer: a }.blamed(), vec![a]);
        let failed = ProtocolError::Failed {
            reason: "bad proof".into(),
            suspect: Some(b),
        };
        assert_eq!(failed.blamed(), vec![b]);
        // Someone outside the run cannot hold it up, and a bad start is nobody's fault.
        assert!(ProtocolError::UnknownPeer(a).blamed().is_empty());
        assert!(ProtocolError::BadParameters("t > n".into())
            .blamed()
            .is_empty());
    }
}
