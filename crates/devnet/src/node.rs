//! Running a devnet: the block producer thread and the JSON-RPC server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use near_crypto::{InMemorySigner, Signer};
use near_primitives::types::AccountId;
use tokio::sync::{oneshot, watch};

use crate::chain::Chain;
use crate::error::DevnetError;
use crate::genesis::Home;
use crate::rpc::{router, RpcContext};

/// Blocks between a block and its finality, as on NEAR.
pub const DEFAULT_FINAL_LAG: u64 = 2;

/// How to run a devnet.
#[derive(Clone, Debug)]
pub struct DevnetConfig {
    /// Home directory: created with a new chain when absent or empty, resumed otherwise.
    pub home: PathBuf,
    /// JSON-RPC listen address (port 0 picks a free port; see [`Devnet::rpc_addr`]).
    pub rpc_addr: SocketAddr,
    /// Time between blocks.
    pub block_time: Duration,
    /// How many blocks `final` lags the head, as on NEAR where a block is final about two
    /// blocks after it is made (default 2). `near-final` lags by `min(1, final_lag)`,
    /// `optimistic` is the head. 0 makes every block final at once.
    pub final_lag: u64,
    /// Chain id of a new chain (ignored when resuming).
    pub chain_id: String,
    /// How long `broadcast_tx_commit`, `send_tx` and `tx` wait for an outcome.
    pub tx_timeout: Duration,
}

impl DevnetConfig {
    pub fn new(home: impl Into<PathBuf>) -> Self {
        DevnetConfig {
            home: home.into(),
            rpc_addr: SocketAddr::from(([127, 0, 0, 1], 3030)),
            block_time: Duration::from_millis(500),
            final_lag: DEFAULT_FINAL_LAG,
            chain_id: "localnet".to_string(),
            tx_timeout: Duration::from_secs(10),
        }
    }
}

/// A running devnet. Dropping it without [`Devnet::stop`] stops block production too.
pub struct Devnet {
    rpc_addr: SocketAddr,
    home: Home,
    root: AccountId,
    chain: Arc<Mutex<Chain>>,
    stop: Arc<AtomicBool>,
    producer: Option<std::thread::JoinHandle<()>>,
    server_stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Devnet {
    /// Opens (or creates) the chain, starts producing blocks and serving JSON-RPC.
    /// Must be called inside a tokio runtime.
    pub async fn start(config: DevnetConfig) -> Result<Devnet, DevnetError> {
        let home = Home::new(&config.home);
        let chain_id = config.chain_id.clone();
        let home2 = home.clone();
        let final_lag = config.final_lag;
        let chain =
            tokio::task::spawn_blocking(move || Chain::open_or_init(&home2, &chain_id, final_lag))
                .await
                .map_err(|e| DevnetError::Home(format!("opening the chain failed: {e}")))??;
        let root = chain.genesis.root_account_id.clone();
        let (height_tx, height_rx) = watch::channel(chain.head().height);
        let height_tx = Arc::new(height_tx);
        let chain = Arc::new(Mutex::new(chain));

        let listener = tokio::net::TcpListener::bind(config.rpc_addr).await?;
        let rpc_addr = listener.local_addr()?;
        let ctx = Arc::new(RpcContext {
            chain: chain.clone(),
            heights: height_rx,
            height_tx: height_tx.clone(),
            tx_timeout: config.tx_timeout,
            started: Instant::now(),
            rpc_addr: rpc_addr.to_string(),
        });
        let (server_stop, stop_rx) = oneshot::channel::<()>();
        let app = router(ctx);
        let server = tokio::spawn(async move {
            let shutdown = async {
                let _ = stop_rx.await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "json-rpc server failed");
            }
        });

        let stop = Arc::new(AtomicBool::new(false));
        let producer = {
            let chain = chain.clone();
            let stop = stop.clone();
            let block_time = config.block_time;
            std::thread::Builder::new()
                .name("devnet-blocks".into())
                .spawn(move || produce_blocks(chain, stop, block_time, height_tx))?
        };
        tracing::info!(%rpc_addr, home = %home.dir.display(), "devnet running");
        Ok(Devnet {
            rpc_addr,
            home,
            root,
            chain,
            stop,
            producer: Some(producer),
            server_stop: Some(server_stop),
            server: Some(server),
        })
    }

    /// The address JSON-RPC listens on.
    pub fn rpc_addr(&self) -> SocketAddr {
        self.rpc_addr
    }

    /// `http://ADDR` for clients.
    pub fn rpc_url(&self) -> String {
        format!("http://{}", self.rpc_addr)
    }

    pub fn root_account(&self) -> &AccountId {
        &self.root
    }

    /// A signer for the root account, from its key file in the home directory.
    pub fn root_signer(&self) -> Result<Signer, DevnetError> {
        let key = self.home.read_key(&self.root)?;
        Ok(InMemorySigner::from_secret_key(
            key.account_id,
            key.secret_key,
        ))
    }

    /// Height of the last committed block.
    pub fn height(&self) -> u64 {
        self.chain
            .lock()
            .map(|c| c.head().height)
            .unwrap_or_else(|p| p.into_inner().head().height)
    }

    /// Height of the last final block (`final_lag` below the head).
    pub fn final_height(&self) -> u64 {
        self.chain
            .lock()
            .map(|c| c.final_height())
            .unwrap_or_else(|p| p.into_inner().final_height())
    }

    /// Stops block production and the server; everything committed stays in the home.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(p) = self.producer.take() {
            let _ = tokio::task::spawn_blocking(move || p.join()).await;
        }
        if let Some(s) = self.server_stop.take() {
            let _ = s.send(());
        }
        if let Some(s) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), s).await;
        }
        // The server returns once its connections are told to close, but a
        // connection task may still hold the chain for a moment after; wait for
        // it so that the database is closed when `stop` returns and the same
        // home can be opened again at once.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&self.chain) > 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(s) = self.server_stop.take() {
            let _ = s.send(());
        }
    }
}

fn produce_blocks(
    chain: Arc<Mutex<Chain>>,
    stop: Arc<AtomicBool>,
    block_time: Duration,
    heights: Arc<watch::Sender<u64>>,
) {
    let mut next = Instant::now() + block_time;
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(50)));
            continue;
        }
        next += block_time;
        if next < now {
            next = now + block_time;
        }
        let result = {
            let mut c = chain.lock().unwrap_or_else(|p| p.into_inner());
            c.produce_block().map(|b| b.height)
        };
        match result {
            Ok(h) => {
                heights.send_replace(h);
            }
            Err(e) => {
                tracing::error!(error = %e, "block production failed; the devnet stops producing blocks");
                return;
            }
        }
    }
}
