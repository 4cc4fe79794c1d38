//! The node's key files: good ones load, bad ones are refused with the file named.

use chainsig_node::keys::{create_tls_key_file, load_account_key, load_tls_identity};
use near_crypto::{KeyFile, KeyType, SecretKey};

fn write_key_file(
    dir: &std::path::Path,
    account: &str,
    secret: &SecretKey,
    public: near_crypto::PublicKey,
) -> std::path::PathBuf {
    let path = dir.join(format!("{account}.json"));
    let file = KeyFile {
        account_id: account.parse().unwrap(),
        public_key: public,
        secret_key: secret.clone(),
    };
    file.write_to_file(&path).unwrap();
    path
}

#[test]
fn account_key_files_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let secret = SecretKey::from_random(KeyType::ED25519);
    let path = write_key_file(dir.path(), "node1.test.near", &secret, secret.public_key());
    let key = load_account_key(&path, "node1.test.near").unwrap();
    assert_eq!(key.secret_key.public_key(), secret.public_key());
    assert!(
        !format!("{key:?}").contains(&secret.to_string()),
        "Debug never shows the secret"
    );

    let error = load_account_key(&path, "node2.test.near")
        .unwrap_err()
        .to_string();
    assert!(error.contains("not of `node2.test.near`"), "{error}");

    let other = SecretKey::from_random(KeyType::ED25519);
    let mismatched = write_key_file(dir.path(), "node3.test.near", &secret, other.public_key());
    let error = load_account_key(&mismatched, "node3.test.near")
        .unwrap_err()
        .to_string();
    // near-crypto's reader refuses it first; our own check stands behind it.
    assert!(
        error.contains("node3.test.near.json") && error.contains("public"),
        "{error}"
    );

    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"account_id\": 5}").unwrap();
    let error = load_account_key(&garbage, "x.near")
        .unwrap_err()
        .to_string();
    assert!(error.contains("garbage.json"), "{error}");
    let error = load_account_key(&dir.path().join("missing.json"), "x.near")
        .unwrap_err()
        .to_string();
    assert!(error.contains("missing.json"), "{error}");
}

#[test]
fn tls_key_files_round_trip_and_are_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.tls");
    let created = create_tls_key_file(&path).unwrap();
    assert_eq!(
        load_tls_identity(&path).unwrap().public_key(),
        created.public_key()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let error = create_tls_key_file(&path)
        .expect_err("no overwrite")
        .to_string();
    assert!(error.contains("cannot create it"), "{error}");
    assert_eq!(
        load_tls_identity(&path).unwrap().public_key(),
        created.public_key()
    );

    std::fs::write(dir.path().join("bad.tls"), "not hex").unwrap();
    let error = load_tls_identity(&dir.path().join("bad.tls"))
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("64 hex characters"), "{error}");
}
