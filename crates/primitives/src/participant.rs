use serde::{Deserialize, Serialize};

/// A participant of the MPC network: the contract assigns ids, the engine uses them as the
/// evaluation points of the secret sharing (id `i` is the point `i + 1`, so 0 is a valid id).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct ParticipantId(pub u32);

impl ParticipantId {
    pub fn to_be_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }
}

impl core::fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "participant #{}", self.0)
    }
}

impl From<u32> for ParticipantId {
    fn from(id: u32) -> Self {
        Self(id)
    }
}
