//! `chainsig local add-node` and `chainsig local remove-node`: change the local network's
//! members the way operators of a real network do. A new node registers itself (its own
//! `join`); a threshold of the participants' operators vote it in, or a participant out, each
//! with its node's key (`chainsig vote`); the network then reshares the same key by itself.
//! The commands wait until the contract runs in the new epoch and say how it goes.
//!
//! The node processes belong to `local up`: it starts a node added to `local.json` and
//! stops one marked removed, so Ctrl-C still stops everything.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chainsig_devnet::client::DevnetClient;
use chainsig_node::cli::Vote;
use clap::Args;
use near_crypto::InMemorySigner;
use near_primitives::types::{AccountId, Balance};
use serde_json::Value;

use super::files::{self, Home, Network, NodeSetup, Setup};
use super::node_files;
use crate::error::CliError;

#[derive(Args, Debug)]
pub struct AddNodeArgs {
    /// Home directory of the running local network.
    #[arg(long, default_value = ".chainsig-local")]
    home: PathBuf,
    /// Give up if the node is not a participant after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

#[derive(Args, Debug)]
pub struct RemoveNodeArgs {
    /// The node to remove, as `local up` named it (`node2`).
    name: String,
    /// Home directory of the running local network.
    #[arg(long, default_value = ".chainsig-local")]
    home: PathBuf,
    /// Give up if the node is still a participant after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

pub fn add(args: AddNodeArgs) -> Result<(), CliError> {
    let home = Home::new(node_files::absolute(&args.home)?);
    runtime()?.block_on(add_node(&home, Duration::from_secs(args.timeout)))
}

pub fn remove(args: RemoveNodeArgs) -> Result<(), CliError> {
    let home = Home::new(node_files::absolute(&args.home)?);
    runtime()?.block_on(remove_node(
        &home,
        &args.name,
        Duration::from_secs(args.timeout),
    ))
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the async runtime: {e}")))
}

/// The running network: its `network.json` (present while `local up` runs) and `local.json`.
fn running_network(home: &Home) -> Result<(Network, Setup), CliError> {
    let network = Network::load(&home.dir)?;
    let setup: Setup = files::read_json(&home.setup_file())?;
    Ok((network, setup))
}

async fn add_node(home: &Home, timeout: Duration) -> Result<(), CliError> {
    let (network, mut setup) = running_network(home)?;
    let name = (0..)
        .map(|i| format!("node{i}"))
        .find(|name| setup.nodes.iter().all(|n| &n.name != name))
        .expect("an unused name");
    let node = create_node(home, &network, &setup, &name).await?;
    println!(
        "created {} (mesh {}); `local up` starts it, and it asks to join",
        node.account_id, node.mesh_address
    );
    let account = node.account_id.clone();
    setup.nodes.push(node);
    files::write_json(&home.setup_file(), &setup)?;

    let watch = Watch::new(&network, timeout)?;
    watch
        .until(&format!("{account} to ask to join"), |state| {
            is_candidate(state, &account) || is_participant(state, &account)
        })
        .await?;
    if !is_participant(&watch.state().await, &account) {
        cast_votes(
            &setup,
            &watch.state().await,
            None,
            &Vote::Join {
                candidate: account.clone(),
            },
        )
        .await?;
    }
    let state = watch.membership_change(&account, true).await?;
    watch.stock_back(&setup, setup.presignatures_low).await;
    println!(
        "{name} is a participant (id {}) at epoch {}",
        participant_id(&state, &account).unwrap_or_default(),
        running_epoch(&state).unwrap_or_default()
    );
    Ok(())
}

async fn create_node(
    home: &Home,
    network: &Network,
    setup: &Setup,
    name: &str,
) -> Result<NodeSetup, CliError> {
    let root = setup
        .root_account()
        .ok_or_else(|| CliError::Failed("local.json: no root account in contract_id".into()))?;
    let root: AccountId = root
        .parse()
        .map_err(|e| CliError::Failed(format!("local.json: {e}")))?;
    let key = chainsig_devnet::genesis::Home::new(home.devnet_dir())
        .read_key(&root)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let root_signer = InMemorySigner::from_secret_key(key.account_id, key.secret_key);
    let account: AccountId = format!("{name}.{root}")
        .parse()
        .map_err(|e| CliError::Failed(format!("account {name}.{root}: {e}")))?;
    DevnetClient::with_home(&network.rpc_url, &home.dir)
        .create_account(
            &root_signer,
            &account,
            Balance::from_yoctonear(100 * 10u128.pow(24)),
            None,
        )
        .await
        .map_err(|e| CliError::Failed(format!("creating {account}: {e}")))?;
    let node = node_files::create(
        home,
        name,
        account.as_str(),
        &network.rpc_url,
        &network.contract_id,
    )?;
    Ok(node.setup)
}

async fn remove_node(home: &Home, name: &str, timeout: Duration) -> Result<(), CliError> {
    let (network, mut setup) = running_network(home)?;
    let Some(index) = setup
        .nodes
        .iter()
        .position(|n| n.name == name && !n.removed)
    else {
        let names: Vec<&str> = setup.active_nodes().map(|n| n.name.as_str()).collect();
        return Err(CliError::Input(format!(
            "no node {name} in this network; its nodes: {}",
            names.join(", ")
        )));
    };
    let account = setup.nodes[index].account_id.clone();
    let watch = Watch::new(&network, timeout)?;
    let state = watch.state().await;
    if !is_participant(&state, &account) {
        return Err(CliError::Input(format!(
            "{name} ({account}) is not a participant"
        )));
    }
    let vote = Vote::Leave {
        participant: account.clone(),
    };
    cast_votes(&setup, &state, Some(&account), &vote).await?;
    let state = watch.membership_change(&account, false).await?;
    setup.nodes[index].removed = true;
    watch.stock_back(&setup, setup.presignatures_low).await;
    files::write_json(&home.setup_file(), &setup)?;
    println!(
        "{name} left at epoch {}; `local up` stops it",
        running_epoch(&state).unwrap_or_default()
    );
    Ok(())
}

/// Votes as the operators of a threshold of participants, preferring those other than
/// `except` (a node being removed may be down).
async fn cast_votes(
    setup: &Setup,
    state: &Value,
    except: Option<&str>,
    vote: &Vote,
) -> Result<(), CliError> {
    let running = &state["Running"];
    let threshold = running["threshold"].as_u64().unwrap_or(0) as usize;
    let mut voters: Vec<&NodeSetup> = setup
        .active_nodes()
        .filter(|n| is_participant(state, &n.account_id))
        .collect();
    voters.sort_by_key(|n| Some(n.account_id.as_str()) == except);
    if threshold == 0 || voters.len() < threshold {
        return Err(CliError::Failed(format!(
            "the network is not Running with {threshold} local participants to vote"
        )));
    }
    for node in &voters[..threshold] {
        let config = chainsig_node::config::Config::load(&node.config_file)
            .map_err(|e| CliError::Failed(e.to_string()))?;
        let said = chainsig_node::cli::vote(&config, vote)
            .await
            .map_err(|e| match e {
                chainsig_node::cli::NodeError::Config(m)
                | chainsig_node::cli::NodeError::Failed(m) => CliError::Failed(m),
            })?;
        println!("{}: {said}", node.name);
    }
    Ok(())
}

/// Follows the contract's state, printing a line whenever the membership change moves on.
struct Watch {
    chain: DevnetClient,
    contract: AccountId,
    rpc_url: String,
    deadline: Instant,
    /// When (and at which block) the reshare began, once seen.
    began: std::cell::Cell<Option<(Instant, u64)>>,
}

impl Watch {
    fn new(network: &Network, timeout: Duration) -> Result<Self, CliError> {
        let contract = network
            .contract_id
            .parse()
            .map_err(|e| CliError::Failed(format!("network.json contract_id: {e}")))?;
        Ok(Watch {
            chain: DevnetClient::new(&network.rpc_url),
            contract,
            rpc_url: network.rpc_url.clone(),
            deadline: Instant::now() + timeout,
            began: std::cell::Cell::new(None),
        })
    }

    async fn state(&self) -> Value {
        self.chain
            .view::<Value>(&self.contract, "state", &serde_json::json!({}))
            .await
            .unwrap_or(Value::Null)
    }

    /// Waits for the reshare that makes `account` a participant (`joins`) or not: until the
    /// contract runs with it in (or out). A reshare that ends with the old set (cancelled by
    /// vote or out of attempts) is an error that says so.
    async fn membership_change(&self, account: &str, joins: bool) -> Result<Value, CliError> {
        let mut resharing_seen = false;
        let state = self
            .until(&format!("the reshare for {account}"), |state| {
                let started_at = state["Resharing"]["key_event"]["started_at"].as_u64();
                if let (Some(block), None) = (started_at, self.began.get()) {
                    self.began.set(Some((Instant::now(), block)));
                }
                resharing_seen |= started_at.is_some();
                running_epoch(state).is_some()
                    && (is_participant(state, account) == joins || resharing_seen)
            })
            .await?;
        if let (Some((at, block)), Ok(now)) = (self.began.get(), self.chain.head_height().await) {
            println!(
                "the reshare ended after {} blocks ({:.1} s)",
                now.saturating_sub(block),
                at.elapsed().as_secs_f64()
            );
        }
        if is_participant(&state, account) != joins {
            return Err(CliError::Failed(format!(
                "the reshare was cancelled (by vote, or after its attempts ran out): the \
                 network runs on with the old set at epoch {}; vote again to retry",
                running_epoch(&state).unwrap_or_default()
            )));
        }
        Ok(state)
    }

    /// Waits (at most a minute) until every node of `setup` owns `low` presignatures of the
    /// new epoch again, and says how long after the reshare began that was.
    async fn stock_back(&self, setup: &Setup, low: usize) {
        let nodes: Vec<(String, String)> = setup
            .active_nodes()
            .map(|n| (n.name.clone(), n.http_url.clone()))
            .collect();
        let watcher = super::progress::Watcher::new(&self.rpc_url, self.contract.clone());
        let waiting = Instant::now();
        while waiting.elapsed() < Duration::from_secs(60) {
            let observed = watcher.observe(&nodes).await;
            if observed
                .nodes
                .iter()
                .all(|n| n.up && n.presignatures >= low)
            {
                let since = self.began.get().map_or(String::new(), |(at, _)| {
                    format!(
                        " {:.1} s after the reshare began",
                        at.elapsed().as_secs_f64()
                    )
                });
                println!("every node has {low} presignatures of the new epoch again{since}");
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!("the nodes have not refilled their presignatures after a minute");
    }

    /// Waits until `done` holds for the contract's state; fails at the deadline.
    async fn until(
        &self,
        what: &str,
        mut done: impl FnMut(&Value) -> bool,
    ) -> Result<Value, CliError> {
        let mut last = String::new();
        loop {
            let state = self.state().await;
            if done(&state) {
                return Ok(state);
            }
            let line = describe(&state);
            if line != last {
                println!("{line}");
                last = line;
            }
            if Instant::now() > self.deadline {
                return Err(CliError::Failed(format!(
                    "gave up waiting for {what}: {last}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// One line about where the network is: `Running at epoch 2, 4 participants` or
/// `Resharing into epoch 3: attempt 1 (leader 2, until block 812), 2 of 4 new shares reported`.
fn describe(state: &Value) -> String {
    if let Some(epoch) = running_epoch(state) {
        let count = state["Running"]["participants"]
            .as_array()
            .map_or(0, Vec::len);
        return format!("Running at epoch {epoch}, {count} participants");
    }
    let resharing = &state["Resharing"];
    if resharing.is_object() {
        let attempt = &resharing["key_event"]["attempt"];
        let new = resharing["new_participants"].as_array().map_or(0, Vec::len);
        let reported = resharing["finished_votes"].as_array().map_or(0, Vec::len);
        return format!(
            "Resharing into epoch {}: attempt {} (leader {}, until block {}), {reported} of {new} new shares reported",
            resharing["new_epoch"], attempt["id"], attempt["leader"], attempt["deadline"]
        );
    }
    format!("contract {}", super::progress::state_name(state))
}

fn running_epoch(state: &Value) -> Option<u64> {
    state["Running"]["epoch"].as_u64()
}

fn members<'a>(state: &'a Value, list: &str) -> impl Iterator<Item = &'a Value> {
    state["Running"][list].as_array().into_iter().flatten()
}

fn is_participant(state: &Value, account: &str) -> bool {
    members(state, "participants").any(|p| p["account_id"] == account)
}

fn is_candidate(state: &Value, account: &str) -> bool {
    members(state, "candidates").any(|p| p["account_id"] == account)
}

fn participant_id(state: &Value, account: &str) -> Option<u64> {
    members(state, "participants")
        .find(|p| p["account_id"] == account)
        .and_then(|p| p["id"].as_u64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn progress_lines_say_where_the_reshare_is() {
        let resharing = json!({"Resharing": {"new_epoch": 3, "new_participants": [{}, {}, {}],
            "finished_votes": ["a"], "key_event": {"attempt": {"id": 1, "leader": 2, "deadline": 812}}}});
        assert_eq!(
            describe(&resharing),
            "Resharing into epoch 3: attempt 1 (leader 2, until block 812), 1 of 3 new shares reported"
        );
        let running = json!({"Running": {"epoch": 2, "participants": [
            {"account_id": "a.near", "id": 0}, {"account_id": "b.near", "id": 4}],
            "candidates": [{"account_id": "c.near"}]}});
        assert_eq!(describe(&running), "Running at epoch 2, 2 participants");
        assert!(is_participant(&running, "b.near") && !is_participant(&running, "c.near"));
        assert!(is_candidate(&running, "c.near"));
        assert_eq!(participant_id(&running, "b.near"), Some(4));
        assert_eq!(describe(&Value::Null), "contract unknown");
    }
}
