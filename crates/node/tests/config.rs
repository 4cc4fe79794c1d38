//! The node config: a good file loads; each kind of mistake is reported by field name.

use std::path::Path;

use chainsig_node::chain::Finality;
use chainsig_node::config::Config;

const GOOD: &str = r#"
[node]
account_id = "node1.test.near"
account_key_file = "keys/node1.test.near.json"
data_dir = "data/node1"

[near]
rpc_url = "http://127.0.0.1:3030"
contract_id = "signer.test.near"

[mesh]
listen = "127.0.0.1:4001"
public_address = "127.0.0.1:4001"
tls_key_file = "node1.tls"

[http]
listen = "127.0.0.1:5001"

[storage]
key_env = "CHAINSIG_STORAGE_KEY"

[stockpile]
triples_low = 4
triples_high = 8
"#;

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(text, Path::new("node.toml")).map_err(|e| e.to_string())
}

#[test]
fn a_good_config_loads_with_defaults_for_the_rest() {
    let config = parse(GOOD).unwrap();
    assert_eq!(config.node.account_id, "node1.test.near");
    assert_eq!(config.stockpile.triples_high, 8);
    assert_eq!(config.stockpile.presignatures_low, 8);
    assert_eq!(config.timeouts.sign_ms, 10_000);
    assert_eq!(config.near.finality, Finality::NearFinal);
}

#[test]
fn the_followed_finality_is_a_setting() {
    for (text, finality) in [
        ("optimistic", Finality::Optimistic),
        ("near-final", Finality::NearFinal),
        ("final", Finality::Final),
    ] {
        let config =
            parse(&GOOD.replace("[near]\n", &format!("[near]\nfinality = \"{text}\"\n"))).unwrap();
        assert_eq!(config.near.finality, finality);
        assert_eq!(finality.as_str(), text);
    }
}

#[test]
fn mistakes_name_the_field() {
    let cases = [
        (
            GOOD.replace("node1.test.near\"\naccount_key", "Node1\"\naccount_key"),
            "node.account_id",
        ),
        (
            GOOD.replace("http://127.0.0.1:3030", "ftp://x"),
            "near.rpc_url",
        ),
        (
            GOOD.replace("http://127.0.0.1:3030", "not a url"),
            "near.rpc_url",
        ),
        (
            GOOD.replace("listen = \"127.0.0.1:4001\"", "listen = \"nowhere\""),
            "`mesh.listen` (line 12)",
        ),
        (
            GOOD.replace(
                "public_address = \"127.0.0.1:4001\"",
                "public_address = \"host\"",
            ),
            "mesh.public_address",
        ),
        (
            GOOD.replace("key_env = \"CHAINSIG_STORAGE_KEY\"", ""),
            "storage",
        ),
        (
            GOOD.replace(
                "key_env = \"CHAINSIG_STORAGE_KEY\"",
                "key_env = \"A\"\nkey_file = \"b\"",
            ),
            "not both",
        ),
        (
            GOOD.replace("triples_low = 4", "triples_low = 9"),
            "stockpile.triples_low",
        ),
        (
            GOOD.replace("triples_low = 4", "triples_low = -1"),
            "`stockpile.triples_low`",
        ),
        (
            GOOD.replace("[stockpile]", "[stockpile]\nbogus = 1"),
            "unknown field `bogus`",
        ),
        (
            GOOD.replace("[near]\n", "[near]\nsecret_key = \"x\"\n"),
            "unknown field `secret_key`",
        ),
        (GOOD.replace("[node]\n", ""), "unknown field"),
        (
            GOOD.replace("[near]\n", "[near]\nfinality = \"doomslug\"\n"),
            "`near.finality`",
        ),
        (
            format!("{GOOD}\n[timeouts]\nsign_ms = 5\n"),
            "timeouts.sign_ms",
        ),
        ("this is = not toml [".to_string(), "node.toml"),
    ];
    for (text, expected) in cases {
        let error = parse(&text).expect_err(expected);
        assert!(
            error.contains(expected),
            "expected `{expected}` in `{error}`"
        );
        assert_eq!(error.lines().count(), 1, "one line: {error}");
    }
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let error = Config::load(Path::new("/nonexistent/node.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("cannot read config file /nonexistent/node.toml"),
        "{error}"
    );
}
