//! The chainsig signer contract (being written).
