//! What travels in a mesh frame. The first byte is the format version, the second the kind;
//! a frame that does not parse is an error for that peer, never a panic.

use thiserror::Error;

const VERSION: u8 = 1;
const HEARTBEAT: u8 = 0;
const PROTOCOL: u8 = 1;
const JOB: u8 = 2;
const STATUS: u8 = 3;
const DECLINE: u8 = 4;
/// A status body: height (8 bytes), has-epoch flag (1), epoch (8), presignatures (4),
/// can-lead flag (1).
const STATUS_LEN: usize = 22;

/// Names one protocol run (a keygen, a triple batch, a presignature, a signature); every
/// participant derives the same id for the same run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(pub [u8; 32]);

/// What a node tells its peers about itself with every heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStatus {
    /// The last block its indexer has processed.
    pub height: u64,
    /// The epoch whose key share it signs with, if it serves.
    pub serving_epoch: Option<u64>,
    /// Presignatures it owns whose participants are all up.
    pub presignatures: u32,
    /// Whether it can lead a signature now (it has a presignature whose participants are
    /// all up): a node that cannot is passed over, so requests do not wait on it.
    pub can_lead: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeshMessage {
    /// Keeps the connection's liveness fresh when there is nothing else to send.
    Heartbeat,
    /// A heartbeat that also says where the sender is.
    Status(PeerStatus),
    /// One message of one protocol run.
    Protocol {
        instance: InstanceId,
        payload: Vec<u8>,
    },
    /// A job announcement (e.g. "I start a triple batch among you"): its body is parsed by the
    /// coordinator, which checks it like any other input from a peer.
    Job(Vec<u8>),
    /// "I cannot take part in this run" (to the one who announced it): it ends at once
    /// instead of waiting on this node until its timeout.
    Decline { instance: InstanceId },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageError {
    #[error("empty frame")]
    Empty,
    #[error("frame format version {0}, this node speaks {VERSION}")]
    Version(u8),
    #[error("unknown message kind {0}")]
    Kind(u8),
    #[error("frame of kind {kind} is {len} bytes, too short")]
    Truncated { kind: u8, len: usize },
    #[error("heartbeat with trailing bytes")]
    TrailingBytes,
    #[error("status of {0} bytes; a status is {STATUS_LEN}")]
    StatusLength(usize),
    #[error("decline of {0} bytes; a decline is 32")]
    DeclineLength(usize),
    #[error("status with a bad epoch flag {0}")]
    StatusFlag(u8),
}

impl MeshMessage {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            MeshMessage::Heartbeat => vec![VERSION, HEARTBEAT],
            MeshMessage::Status(status) => {
                let mut frame = Vec::with_capacity(2 + STATUS_LEN);
                frame.extend_from_slice(&[VERSION, STATUS]);
                frame.extend_from_slice(&status.height.to_be_bytes());
                frame.push(u8::from(status.serving_epoch.is_some()));
                frame.extend_from_slice(&status.serving_epoch.unwrap_or(0).to_be_bytes());
                frame.extend_from_slice(&status.presignatures.to_be_bytes());
                frame.push(u8::from(status.can_lead));
                frame
            }
            MeshMessage::Protocol { instance, payload } => {
                let mut frame = Vec::with_capacity(2 + 32 + payload.len());
                frame.extend_from_slice(&[VERSION, PROTOCOL]);
                frame.extend_from_slice(&instance.0);
                frame.extend_from_slice(payload);
                frame
            }
            MeshMessage::Job(body) => {
                let mut frame = Vec::with_capacity(2 + body.len());
                frame.extend_from_slice(&[VERSION, JOB]);
                frame.extend_from_slice(body);
                frame
            }
            MeshMessage::Decline { instance } => {
                let mut frame = Vec::with_capacity(2 + 32);
                frame.extend_from_slice(&[VERSION, DECLINE]);
                frame.extend_from_slice(&instance.0);
                frame
            }
        }
    }

    pub fn decode(frame: &[u8]) -> Result<Self, MessageError> {
        let (&version, rest) = frame.split_first().ok_or(MessageError::Empty)?;
        if version != VERSION {
            return Err(MessageError::Version(version));
        }
        let (&kind, body) = rest.split_first().ok_or(MessageError::Truncated {
            kind: 0,
            len: frame.len(),
        })?;
        match kind {
            HEARTBEAT if body.is_empty() => Ok(MeshMessage::Heartbeat),
            HEARTBEAT => Err(MessageError::TrailingBytes),
            PROTOCOL => {
                let (instance, payload) =
                    body.split_at_checked(32).ok_or(MessageError::Truncated {
                        kind,
                        len: frame.len(),
                    })?;
                Ok(MeshMessage::Protocol {
                    instance: InstanceId(instance.try_into().expect("32 bytes")),
                    payload: payload.to_vec(),
                })
            }
            JOB => Ok(MeshMessage::Job(body.to_vec())),
            DECLINE => {
                let instance: [u8; 32] = body
                    .try_into()
                    .map_err(|_| MessageError::DeclineLength(body.len()))?;
                Ok(MeshMessage::Decline {
                    instance: InstanceId(instance),
                })
            }
            STATUS => decode_status(body).map(MeshMessage::Status),
            other => Err(MessageError::Kind(other)),
        }
    }
}

fn decode_status(body: &[u8]) -> Result<PeerStatus, MessageError> {
    let body: &[u8; STATUS_LEN] = body
        .try_into()
        .map_err(|_| MessageError::StatusLength(body.len()))?;
    let (height, rest) = body.split_at(8);
    let (flag, rest) = rest.split_at(1);
    let (epoch, rest) = rest.split_at(8);
    let (presignatures, can_lead) = rest.split_at(4);
    let height = u64::from_be_bytes(height.try_into().expect("8 bytes"));
    let epoch = u64::from_be_bytes(epoch.try_into().expect("8 bytes"));
    let presignatures = u32::from_be_bytes(presignatures.try_into().expect("4 bytes"));
    let serving_epoch = match flag[0] {
        0 if epoch == 0 => None,
        1 => Some(epoch),
        other => return Err(MessageError::StatusFlag(other)),
    };
    let can_lead = match can_lead[0] {
        0 => false,
        1 => true,
        other => return Err(MessageError::StatusFlag(other)),
    };
    Ok(PeerStatus {
        height,
        serving_epoch,
        presignatures,
        can_lead,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn messages_round_trip() {
        for message in [
            MeshMessage::Heartbeat,
            MeshMessage::Protocol {
                instance: InstanceId([9; 32]),
                payload: vec![],
            },
            MeshMessage::Protocol {
                instance: InstanceId([1; 32]),
                payload: vec![1, 2, 3],
            },
            MeshMessage::Job(vec![]),
            MeshMessage::Job(b"{}".to_vec()),
            MeshMessage::Status(PeerStatus::default()),
            MeshMessage::Status(PeerStatus {
                height: u64::MAX,
                serving_epoch: Some(7),
                presignatures: 12,
                can_lead: true,
            }),
            MeshMessage::Decline {
                instance: InstanceId([5; 32]),
            },
        ] {
            assert_eq!(MeshMessage::decode(&message.encode()).unwrap(), message);
        }
    }

    #[test]
    fn bad_frames_are_errors() {
        assert_eq!(MeshMessage::decode(&[]), Err(MessageError::Empty));
        assert_eq!(MeshMessage::decode(&[2, 0]), Err(MessageError::Version(2)));
        assert_eq!(MeshMessage::decode(&[1, 7]), Err(MessageError::Kind(7)));
        assert_eq!(
            MeshMessage::decode(&[1, 0, 0]),
            Err(MessageError::TrailingBytes)
        );
        assert!(matches!(
            MeshMessage::decode(&[1, 1, 0]),
            Err(MessageError::Truncated { .. })
        ));
        assert!(matches!(
            MeshMessage::decode(&[1]),
            Err(MessageError::Truncated { .. })
        ));
        assert_eq!(
            MeshMessage::decode(&[1, 3, 0]),
            Err(MessageError::StatusLength(1))
        );
        assert_eq!(
            MeshMessage::decode(&[1, 4, 0, 0]),
            Err(MessageError::DeclineLength(2))
        );
        let mut status = MeshMessage::Status(PeerStatus::default()).encode();
        status[10] = 2;
        assert_eq!(
            MeshMessage::decode(&status),
            Err(MessageError::StatusFlag(2))
        );
    }

    proptest! {
        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(message) = MeshMessage::decode(&bytes) {
                prop_assert_eq!(message.encode(), bytes);
            }
        }
    }
}
