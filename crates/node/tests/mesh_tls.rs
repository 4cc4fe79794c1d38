//! Mutual TLS between nodes with keys pinned to the contract's list: real sockets on loopback.

use chainsig_mpc::ParticipantId;
use chainsig_node::mesh::{Endpoint, PeerDirectory, TlsIdentity, TlsPublicKey};
use tokio::net::TcpListener;

struct Node {
    endpoint: Endpoint,
    listener: TcpListener,
}

async fn node(identity: TlsIdentity, directory: &PeerDirectory) -> Node {
    Node {
        endpoint: Endpoint::new(identity, directory.clone()).unwrap(),
        listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
    }
}

#[tokio::test]
async fn registered_peers_connect_and_exchange_frames() {
    let (a_id, b_id) = (
        TlsIdentity::generate().unwrap(),
        TlsIdentity::generate().unwrap(),
    );
    let directory = PeerDirectory::default();
    directory.replace([
        (a_id.public_key(), ParticipantId(0)),
        (b_id.public_key(), ParticipantId(1)),
    ]);
    let b_key = b_id.public_key();
    let a = node(a_id, &directory).await;
    let b = node(b_id, &directory).await;
    let b_addr = b.listener.local_addr().unwrap();

    let server = tokio::spawn(async move {
        let (tcp, _) = b.listener.accept().await.unwrap();
        let mut connection = b.endpoint.accept(tcp).await.unwrap();
        assert_eq!(
            connection.peer,
            ParticipantId(0),
            "the server knows who dialed"
        );
        let frame = connection.recv_frame().await.unwrap().unwrap();
        connection
            .send_frame(&[frame.as_slice(), b" back"].concat())
            .await
            .unwrap();
        assert!(
            connection.recv_frame().await.unwrap().is_none(),
            "clean close"
        );
    });
    let mut client = a
        .endpoint
        .connect(&b_addr.to_string(), ParticipantId(1), b_key)
        .await
        .unwrap();
    client.send_frame(b"hello").await.unwrap();
    assert_eq!(client.recv_frame().await.unwrap().unwrap(), b"hello back");
    drop(client);
    server.await.unwrap();
}

#[tokio::test]
async fn a_client_with_an_unregistered_key_is_refused() {
    let (b_id, stranger) = (
        TlsIdentity::generate().unwrap(),
        TlsIdentity::generate().unwrap(),
    );
    let directory = PeerDirectory::default();
    directory.replace([(b_id.public_key(), ParticipantId(1))]);
    let b_key = b_id.public_key();
    let b = node(b_id, &directory).await;
    let b_addr = b.listener.local_addr().unwrap();
    let stranger = node(stranger, &PeerDirectory::default()).await;

    let server = tokio::spawn(async move {
        let (tcp, _) = b.listener.accept().await.unwrap();
        b.endpoint
            .accept(tcp)
            .await
            .err()
            .expect("the stranger is refused")
            .to_string()
    });
    // In TLS 1.3 the client finishes its side before the server checks its certificate; the
    // server's acceptance byte is what tells it, so a refused client never sees a connection
    // it would write into and lose.
    let refused = stranger
        .endpoint
        .connect(&b_addr.to_string(), ParticipantId(1), b_key)
        .await
        .err()
        .expect("connect fails for a refused client");
    assert!(refused.to_string().contains("not accepted"), "{refused}");
    let error = server.await.unwrap();
    assert!(error.contains("handshake"), "{error}");
}

#[tokio::test]
async fn a_server_with_the_wrong_key_is_refused() {
    let (a_id, impostor) = (
        TlsIdentity::generate().unwrap(),
        TlsIdentity::generate().unwrap(),
    );
    let expected: TlsPublicKey = TlsIdentity::generate().unwrap().public_key();
    let directory = PeerDirectory::default();
    directory.replace([(a_id.public_key(), ParticipantId(0))]);
    let a = node(a_id, &directory).await;
    let impostor = node(impostor, &directory).await;
    let addr = impostor.listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = impostor.listener.accept().await.unwrap();
        let _ = impostor.endpoint.accept(tcp).await;
    });
    let error = a
        .endpoint
        .connect(&addr.to_string(), ParticipantId(1), expected)
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("participant #1"), "{error}");
}

#[test]
fn tls_keys_use_the_near_format() {
    let identity = TlsIdentity::from_seed(&[7; 32]).unwrap();
    let text = identity.public_key().to_string();
    assert!(text.starts_with("ed25519:"));
    assert_eq!(text.parse::<TlsPublicKey>().unwrap(), identity.public_key());
    assert_eq!(
        TlsIdentity::from_seed(&[7; 32]).unwrap().public_key(),
        identity.public_key()
    );
    for bad in ["", "ed25519:", "secp256k1:abc", "ed25519:0OIl", "ed25519:2"] {
        assert!(bad.parse::<TlsPublicKey>().is_err(), "{bad}");
    }
    assert!(!format!("{identity:?}").contains("pkcs8"));
}
