//! Errors of the devnet process itself (not of transactions: those use nearcore's error types).

#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// The home directory is missing, incomplete or corrupt.
    #[error("devnet home: {0}")]
    Home(String),
    /// The embedded database failed.
    #[error("devnet store: {0}")]
    Store(String),
    /// A stored record could not be decoded.
    #[error("devnet data corrupt: {0}")]
    Corrupt(String),
    #[error("devnet io: {0}")]
    Io(#[from] std::io::Error),
    #[error("devnet vm: {0}")]
    Vm(String),
}
