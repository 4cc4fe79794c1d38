//! `chainsig eth` and `chainsig btc`: the `chains` crate does the work; this prints it.

use chainsig_chains::ChainsError;

use crate::error::CliError;

pub fn print(result: Result<String, ChainsError>) -> Result<(), CliError> {
    let output = result.map_err(CliError::from)?;
    println!("{output}");
    Ok(())
}

impl From<ChainsError> for CliError {
    fn from(error: ChainsError) -> Self {
        match error {
            ChainsError::Input(message) => CliError::Input(message),
            ChainsError::Failed(message) => CliError::Failed(message),
        }
    }
}
