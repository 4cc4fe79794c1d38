//! The node process: opens storage, loads keys, and wires chain access, the indexer, the
//! coordinator and HTTP together; runs until SIGINT/SIGTERM, or until its storage fails (it
//! then exits with one line naming the file and what to do).

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use near_account_id::AccountId;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::chain::ChainClient;
use crate::config::Config;
use crate::coordinator::{Coordinator, Setup};
use crate::http::{HttpState, Metrics, NodeStatus};
use crate::indexer::{self, IndexerSettings};
use crate::keys;
use crate::mesh::{Endpoint, PeerDirectory};
use crate::runner::Router;
use crate::storage::{StorageError, StorageKey, Store};
use crate::tasks::Shared;

const DATABASE_FILE: &str = "node.redb";
/// Blocks the indexer may run ahead of the coordinator.
const EVENT_QUEUE: usize = 4096;

/// Runs the node until SIGINT/SIGTERM.
pub async fn run(config: Config) -> Result<(), String> {
    run_until(config, shutdown_signal()).await
}

/// Runs the node until `shutdown` completes (tests run several nodes in one process).
pub async fn run_until(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    // First of all: a node that cannot trust its storage must not join the mesh.
    let store = Arc::new(open_store(&config)?);
    let account_key =
        keys::load_account_key(&config.node.account_key_file, &config.node.account_id)
            .map_err(|e| e.to_string())?;
    let sign_public_key = account_key.secret_key.public_key().to_string();
    let tls = keys::load_tls_identity(&config.mesh.tls_key_file).map_err(|e| e.to_string())?;
    let contract: AccountId = config
        .near
        .contract_id
        .parse()
        .map_err(|e| format!("near.contract_id: {e}"))?;
    let chain = Arc::new(
        ChainClient::new(&config.near.rpc_url, contract, Some(account_key))
            .with_finality(config.near.finality),
    );
    let directory = PeerDirectory::default();
    let endpoint = Arc::new(Endpoint::new(tls, directory.clone()).map_err(|e| e.to_string())?);
    let metrics = Arc::new(Metrics::new());
    let status = Arc::new(RwLock::new(NodeStatus {
        account_id: config.node.account_id.clone(),
        ..NodeStatus::default()
    }));
    let http_listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .map_err(|e| format!("http.listen {}: {e}", config.http.listen))?;
    let http = HttpState {
        metrics: metrics.clone(),
        status: status.clone(),
    };
    let http_task = tokio::spawn(async move {
        if let Err(error) = crate::http::serve(http_listener, http).await {
            tracing::error!(%error, "HTTP server stopped");
        }
    });

    let generation = generation_runtime()?;
    let shared = Arc::new(Shared {
        account: config.node.account_id.clone(),
        chain: chain.clone(),
        store: store.clone(),
        router: Router::default(),
        metrics,
        timeouts: config.timeouts.clone(),
    });
    let (events, events_rx) = mpsc::channel(EVENT_QUEUE);
    let indexer = tokio::spawn(indexer::run(
        chain,
        store.clone(),
        events,
        IndexerSettings::default(),
    ));
    let coordinator = Coordinator::new(
        shared,
        Setup {
            config: config.clone(),
            sign_public_key,
            endpoint,
            directory,
            status,
            generation: generation.handle().clone(),
        },
    );
    tracing::info!(account = %config.node.account_id, "node started");
    crate::faults::announce();
    let outcome = tokio::select! {
        () = coordinator.run(events_rx) => {
            tracing::warn!("coordinator stopped");
            Ok(())
        }
        () = shutdown => {
            tracing::info!("shutting down");
            Ok(())
        }
        // Storage that failed once is not used again: stop, and say why.
        error = store.damaged() => Err(storage_problem(&config, &error)),
    };
    indexer.abort();
    http_task.abort();
    generation.shutdown_background();
    outcome
}

fn open_store(config: &Config) -> Result<Store, String> {
    let key = storage_key(config)?;
    std::fs::create_dir_all(&config.node.data_dir).map_err(|e| {
        format!(
            "node.data_dir {}: cannot create it: {e}",
            config.node.data_dir.display()
        )
    })?;
    let path = database_path(config);
    if !path.exists() {
        tracing::info!(path = %path.display(), "storage: no database yet, creating one");
    }
    // A node restarted right after a crash may find the lock still held while the old
    // process's last threads exit: wait a moment before calling it another running node.
    let mut tries = 0;
    loop {
        match Store::open(&path, &key) {
            Err(StorageError::InUse) if tries < STORE_LOCK_TRIES => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            result => return result.map_err(|e| storage_problem(config, &e)),
        }
    }
}

fn database_path(config: &Config) -> std::path::PathBuf {
    config.node.data_dir.join(DATABASE_FILE)
}

/// One line for a storage failure: which file, what is wrong, what to do. A node without its
/// data directory starts with no key share; the next reshare gives it one (README).
fn storage_problem(config: &Config, error: &StorageError) -> String {
    let path = database_path(config);
    let path = path.display();
    let data_dir = config.node.data_dir.display();
    match error {
        StorageError::Damaged(why) => format!(
            "storage {path} is damaged ({why}): restore it from a backup, or remove {data_dir} \
             to start this node without its key share (the next reshare gives it a new one)"
        ),
        StorageError::Io(why) => format!(
            "storage {path} cannot be read or written ({why}): check the file, its \
             permissions and the disk"
        ),
        StorageError::InUse => format!(
            "storage {path} is open in another process: is this node already running? Stop \
             that one first"
        ),
        StorageError::WrongKey => format!(
            "storage {path} does not open with the storage key from {}: it was made with \
             another key (or is another node's data); give this node the key it was made with",
            key_source(config)
        ),
        StorageError::UnknownSchema(schema) => format!(
            "storage {path} was written by a newer chainsig (schema {schema}): run that \
             version or a later one"
        ),
        other => format!("storage {path}: {other}"),
    }
}

/// Where the config says the storage key comes from.
fn key_source(config: &Config) -> String {
    match (&config.storage.key_env, &config.storage.key_file) {
        (Some(name), _) => format!("${name} (storage.key_env)"),
        (None, Some(path)) => format!("{} (storage.key_file)", path.display()),
        (None, None) => "nowhere".into(),
    }
}

/// How many times (100 ms apart) to try a database another process holds.
const STORE_LOCK_TRIES: u32 = 30;

/// The storage key from the environment variable or file the config names.
fn storage_key(config: &Config) -> Result<StorageKey, String> {
    let text = match (&config.storage.key_env, &config.storage.key_file) {
        (Some(name), _) => Zeroizing::new(
            std::env::var(name)
                .map_err(|_| format!("storage.key_env: environment variable {name} is not set"))?,
        ),
        (None, Some(path)) => read_key_file(path)?,
        (None, None) => return Err("storage: no key source".into()),
    };
    StorageKey::from_hex(text.trim()).map_err(|e| format!("storage key: {e}"))
}

fn read_key_file(path: &Path) -> Result<Zeroizing<String>, String> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| format!("storage.key_file {}: {e}", path.display()))
}

/// Triple and presignature runs get their own runtime, so a long batch never holds up
/// signing, the mesh or the indexer on the main one. Two threads: one node can use both cores
/// of a small machine while its peers wait on messages (measured: 75% → 87% of the engine's
/// ceiling at (3, 2), BENCHMARKS.md). Its threads run at a lower priority: when the machine
/// is short of CPU (several nodes refilling their stock at once, after a reshare), the
/// indexer and signing must still run at once, or requests go unseen until they time out.
fn generation_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("generation")
        .on_thread_start(lower_this_threads_priority)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the generation runtime: {e}"))
}

/// Niceness of the generation threads: they yield to the rest of the node.
const GENERATION_NICENESS: i32 = 10;

#[cfg(target_os = "linux")]
fn lower_this_threads_priority() {
    // SAFETY: gettid and setpriority take no pointers; on Linux a thread id names one thread
    // for PRIO_PROCESS, so only this thread's niceness changes.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, GENERATION_NICENESS);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_threads_priority() {}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
