//! The node mesh: TCP with mutual TLS 1.3, each side's key pinned to the one the contract
//! lists for it, and length-prefixed, size-capped frames on top.
//!
//! [`Endpoint`] makes authenticated connections; [`network::Mesh`] keeps one to every peer,
//! with heartbeats, reconnection and per-peer queues.

pub mod identity;
pub mod message;
pub mod network;
pub mod pinning;

use std::sync::Arc;
use std::time::Duration;

use chainsig_primitives::ParticipantId;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};

pub use identity::{TlsIdentity, TlsPublicKey};
pub use pinning::PeerDirectory;

/// The name in every node certificate. Nothing checks it (keys are pinned), but TLS needs one.
pub const SERVER_NAME: &str = "chainsig-node";

/// No frame may be larger: the largest protocol message (a batch of triples) stays far below.
pub const MAX_FRAME_BYTES: usize = 16 << 20;

/// How long a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a server sends first, once it has accepted the client as a current participant.
/// In TLS 1.3 the client's handshake completes before the server has checked the client's
/// certificate: a client refused there (a newcomer dialing a peer that has not yet seen the
/// contract admit it) would otherwise take the connection as up and lose what it writes.
/// The bytes also name the frame format, so that an incompatible peer fails here, plainly.
const ACCEPTED: [u8; 4] = *b"csm1";

#[derive(Debug, Error)]
pub enum MeshError {
    #[error("{0}")]
    BadKey(String),
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS handshake with {peer} failed: {reason}")]
    Handshake { peer: String, reason: String },
    #[error("frame of {size} bytes from {peer}; the limit is {limit}")]
    FrameTooLarge {
        peer: String,
        size: usize,
        limit: usize,
    },
}

fn tls_error(peer: impl ToString, error: impl ToString) -> MeshError {
    MeshError::Handshake {
        peer: peer.to_string(),
        reason: error.to_string(),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A node's end of the mesh: its identity and the directory of peers it accepts.
pub struct Endpoint {
    identity: Arc<TlsIdentity>,
    directory: PeerDirectory,
    acceptor: TlsAcceptor,
}

impl Endpoint {
    pub fn new(identity: TlsIdentity, directory: PeerDirectory) -> Result<Self, MeshError> {
        let config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| tls_error("server setup", e))?
            .with_client_cert_verifier(pinning::PinnedClients::new(directory.clone()))
            .with_single_cert(identity.certificate_chain(), identity.private_key())
            .map_err(|e| tls_error("server setup", e))?;
        Ok(Self {
            identity: Arc::new(identity),
            directory,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    pub fn public_key(&self) -> TlsPublicKey {
        self.identity.public_key()
    }

    /// Dials `address`, accepting only a server that holds `expected`'s key.
    pub async fn connect(
        &self,
        address: &str,
        peer: ParticipantId,
        expected: TlsPublicKey,
    ) -> Result<Connection, MeshError> {
        let config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| tls_error(peer, e))?
            .dangerous()
            .with_custom_certificate_verifier(pinning::PinnedServer::new(expected))
            .with_client_auth_cert(
                self.identity.certificate_chain(),
                self.identity.private_key(),
            )
            .map_err(|e| tls_error(peer, e))?;
        let tcp = TcpStream::connect(address).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from(SERVER_NAME).expect("a valid DNS name");
        let handshake = TlsConnector::from(Arc::new(config)).connect(name, tcp);
        let accepted = async {
            let mut stream = handshake.await.map_err(|e| tls_error(peer, e))?;
            let mut answer = [0u8; ACCEPTED.len()];
            stream
                .read_exact(&mut answer)
                .await
                .map_err(|e| tls_error(peer, format!("not accepted: {e}")))?;
            if answer != ACCEPTED {
                return Err(tls_error(peer, "not a chainsig mesh peer of this version"));
            }
            Ok(stream)
        };
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, accepted)
            .await
            .map_err(|_| tls_error(peer, "timed out"))??;
        Ok(Connection {
            peer,
            stream: TlsStream::Client(stream),
        })
    }

    /// Completes the handshake of an incoming connection and tells which participant it is.
    /// A client without the key of a current participant is refused during the handshake.
    pub async fn accept(&self, tcp: TcpStream) -> Result<Connection, MeshError> {
        let remote = tcp.peer_addr()?;
        tcp.set_nodelay(true)?;
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(tcp))
            .await
            .map_err(|_| tls_error(remote, "timed out"))?
            .map_err(|e| tls_error(remote, e))?;
        let (_, session) = stream.get_ref();
        let peer = session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|certificate| pinning::certificate_key(certificate))
            .and_then(|key| self.directory.lookup(&key))
            .ok_or_else(|| tls_error(remote, "the client's key left the directory"))?;
        let mut stream = stream;
        tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
            stream.write_all(&ACCEPTED).await?;
            stream.flush().await
        })
        .await
        .map_err(|_| tls_error(remote, "timed out"))??;
        Ok(Connection {
            peer,
            stream: TlsStream::Server(stream),
        })
    }
}

/// An authenticated, encrypted connection to one peer, carrying length-prefixed frames.
pub struct Connection {
    pub peer: ParticipantId,
    stream: TlsStream<TcpStream>,
}

impl Connection {
    pub async fn send_frame(&mut self, frame: &[u8]) -> Result<(), MeshError> {
        if frame.len() > MAX_FRAME_BYTES {
            return Err(MeshError::FrameTooLarge {
                peer: "ourselves".into(),
                size: frame.len(),
                limit: MAX_FRAME_BYTES,
            });
        }
        self.stream.write_u32(frame.len() as u32).await?;
        self.stream.write_all(frame).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// The next frame; `None` when the peer closed the connection cleanly.
    pub async fn recv_frame(&mut self) -> Result<Option<Vec<u8>>, MeshError> {
        let size = match self.stream.read_u32().await {
            Ok(size) => size as usize,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if size > MAX_FRAME_BYTES {
            return Err(MeshError::FrameTooLarge {
                peer: self.peer.to_string(),
                size,
                limit: MAX_FRAME_BYTES,
            });
        }
        let mut frame = vec![0u8; size];
        self.stream.read_exact(&mut frame).await?;
        Ok(Some(frame))
    }
}
