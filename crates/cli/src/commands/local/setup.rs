//! Making a new local network on a running devnet: the contract, node and user accounts,
//! every node's files, and `init` with all nodes as candidates.

use chainsig_devnet::client::{function_call, DevnetClient};
use chainsig_devnet::Devnet;
use near_crypto::Signer;
use near_primitives::types::{AccountId, Balance, Gas};
use serde_json::json;

use super::files::{Home, Setup};
use super::node_files;
use crate::error::CliError;

/// What the new network looks like.
pub struct Plan {
    pub nodes: u32,
    pub threshold: u32,
    pub users: u32,
    pub rpc_port: u16,
    pub wasm: Vec<u8>,
    /// The devnet's block time: key event attempts are sized in blocks from it.
    pub block_time_ms: u64,
}

/// How long one key event attempt lasts on a local network: about 8 s (a reshare among a
/// handful of local nodes takes a second or two; seeing the state and voting a few blocks),
/// and never under 30 blocks. A reshare that cannot finish is cancelled after 3 attempts.
pub fn attempt_rules(block_time_ms: u64) -> serde_json::Value {
    let blocks = (8_000 / block_time_ms.max(1)).max(30);
    json!({ "key_event_attempt_blocks": blocks, "key_event_max_attempts": 3 })
}

fn near(amount: u128) -> Balance {
    Balance::from_yoctonear(amount * 10u128.pow(24))
}

fn failed(what: &str) -> impl Fn(chainsig_devnet::client::ClientError) -> CliError + '_ {
    move |e| CliError::Failed(format!("{what}: {e}"))
}

fn account(name: &str, root: &AccountId) -> Result<AccountId, CliError> {
    format!("{name}.{root}")
        .parse()
        .map_err(|e| CliError::Failed(format!("account name {name}.{root}: {e}")))
}

/// User accounts: `user`, then `user2`, `user3`, ...
pub fn user_name(index: u32) -> String {
    if index == 0 {
        "user".into()
    } else {
        format!("user{}", index + 1)
    }
}

/// Creates everything and initializes the contract; returns the record to write.
pub async fn create(home: &Home, devnet: &Devnet, plan: &Plan) -> Result<Setup, CliError> {
    let rpc_url = devnet.rpc_url();
    let root = devnet
        .root_signer()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let root_id = devnet.root_account().clone();
    let client = DevnetClient::with_home(&rpc_url, &home.dir);

    let contract_id = account("signer", &root_id)?;
    println!(
        "creating {contract_id} with the contract ({} bytes)",
        plan.wasm.len()
    );
    let contract = client
        .create_account(&root, &contract_id, near(50), Some(plan.wasm.clone()))
        .await
        .map_err(failed("deploying the contract"))?;

    let mut users = Vec::new();
    for index in 0..plan.users {
        let user = account(&user_name(index), &root_id)?;
        client
            .create_account(&root, &user, near(1000), None)
            .await
            .map_err(failed("creating a user account"))?;
        users.push(user.to_string());
    }

    let mut nodes = Vec::new();
    let mut candidates = Vec::new();
    for index in 0..plan.nodes {
        let name = format!("node{index}");
        let node_id = account(&name, &root_id)?;
        let signer = client
            .create_account(&root, &node_id, near(100), None)
            .await
            .map_err(failed("creating a node account"))?;
        let node = node_files::create(
            home,
            &name,
            node_id.as_str(),
            &rpc_url,
            contract_id.as_str(),
        )?;
        candidates.push(candidate(&node, &signer));
        println!(
            "created {node_id} (mesh {}, http {})",
            node.setup.mesh_address, node.setup.http_url
        );
        nodes.push(node.setup);
    }

    let config = attempt_rules(plan.block_time_ms);
    init(
        &client,
        &contract,
        &contract_id,
        plan.threshold,
        candidates,
        config,
    )
    .await?;
    println!(
        "initialized {contract_id}: {} candidates, threshold {}",
        plan.nodes, plan.threshold
    );
    Ok(Setup {
        nodes,
        threshold: plan.threshold,
        rpc_port: plan.rpc_port,
        contract_id: contract_id.to_string(),
        users,
        presignatures_low: node_files::local_stockpile().presignatures_low,
    })
}

fn candidate(node: &node_files::NewNode, signer: &Signer) -> serde_json::Value {
    json!({
        "account_id": node.setup.account_id,
        "url": node.setup.mesh_address,
        "tls_public_key": node.tls_public_key,
        "sign_public_key": signer.public_key().to_string(),
    })
}

async fn init(
    client: &DevnetClient,
    contract: &Signer,
    contract_id: &AccountId,
    threshold: u32,
    candidates: Vec<serde_json::Value>,
    config: serde_json::Value,
) -> Result<(), CliError> {
    let args = json!({"threshold": threshold, "candidates": candidates, "config": config});
    let action = function_call(
        "init",
        &args,
        Gas::from_gas(30 * 10u64.pow(12)),
        Balance::ZERO,
    );
    client
        .execute(contract, contract_id, vec![action])
        .await
        .map(|_| ())
        .map_err(failed("init"))
}
