use std::fmt;

/// A failure of this crate, split the way the CLI reports it: bad input from the user
/// (exit code 2, like clap's usage errors) or a failure while doing the work (exit code 1).
/// The message is always one line, ready to print after `error: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainsError {
    /// The caller's input is wrong: a malformed address, an amount that overflows, outputs
    /// that exceed the inputs, a dust output, a fee rate too low, an unknown network...
    Input(String),
    /// The input was fine but the work failed: a signer error, a signature that does not
    /// verify, an RPC failure.
    Failed(String),
}

impl ChainsError {
    /// `context: error`, as bad user input; `context` is usually the flag (`--to`).
    pub fn input(context: &str, error: impl fmt::Display) -> Self {
        ChainsError::Input(format!("{context}: {error}"))
    }

    pub fn failed(context: &str, error: impl fmt::Display) -> Self {
        ChainsError::Failed(format!("{context}: {error}"))
    }

    /// The process exit code the CLI should end with: 2 for input, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            ChainsError::Input(_) => 2,
            ChainsError::Failed(_) => 1,
        }
    }

    pub fn is_input(&self) -> bool {
        matches!(self, ChainsError::Input(_))
    }

    pub fn message(&self) -> &str {
        let (ChainsError::Input(message) | ChainsError::Failed(message)) = self;
        message
    }
}

impl fmt::Display for ChainsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever an underlying error printed.
        let message = self.message();
        if message.contains(['\n', '\r']) {
            f.write_str(&message.replace(['\n', '\r'], " "))
        } else {
            f.write_str(message)
        }
    }
}

impl std::error::Error for ChainsError {}

pub type Result<T> = std::result::Result<T, ChainsError>;
