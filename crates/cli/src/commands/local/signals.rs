//! SIGINT and SIGTERM as one awaitable event.

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::error::CliError;

pub struct Shutdown {
    interrupt: Signal,
    terminate: Signal,
}

impl Shutdown {
    /// Installs the handlers; from now on the signals no longer end the process directly.
    pub fn new() -> Result<Self, CliError> {
        let install = |kind| {
            signal(kind).map_err(|e| CliError::Failed(format!("cannot handle signals: {e}")))
        };
        Ok(Shutdown {
            interrupt: install(SignalKind::interrupt())?,
            terminate: install(SignalKind::terminate())?,
        })
    }

    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        println!("stopping ...");
    }
}
