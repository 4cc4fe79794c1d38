//! The local NEAR-compatible devnet (being written).
