use std::fmt;

/// A command's failure: bad input from the user (exit code 2, like clap's own usage errors)
/// or a failure while doing the work (exit code 1). Shown as one line.
#[derive(Debug)]
pub enum CliError {
    Input(String),
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Input(_) => 2,
            CliError::Failed(_) => 1,
        }
    }

    pub fn input(context: &str, error: impl fmt::Display) -> Self {
        CliError::Input(format!("{context}: {error}"))
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (CliError::Input(message) | CliError::Failed(message)) = self;
        // One line, whatever the underlying error printed.
        f.write_str(&message.replace('\n', " "))
    }
}
