//! Certificate verifiers that trust keys, not CAs. A dialing node accepts only the key the
//! contract lists for the peer it dials; a listening node accepts only clients whose key is
//! one of the current participants'. TLS 1.3 still proves possession: the handshake signature
//! is checked against the certificate's key.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chainsig_primitives::ParticipantId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use x509_parser::oid_registry::OID_SIG_ED25519;

use super::identity::TlsPublicKey;

/// The ed25519 key inside a certificate, or `None` if it holds no such key.
pub fn certificate_key(certificate: &[u8]) -> Option<TlsPublicKey> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate).ok()?;
    let spki = parsed.public_key();
    if spki.algorithm.algorithm != OID_SIG_ED25519 {
        return None;
    }
    Some(TlsPublicKey(
        spki.subject_public_key.data.as_ref().try_into().ok()?,
    ))
}

/// The TLS keys of the current participants; the coordinator replaces it when the contract's
/// participant set changes.
#[derive(Clone, Default)]
pub struct PeerDirectory(Arc<RwLock<HashMap<TlsPublicKey, ParticipantId>>>);

impl PeerDirectory {
    pub fn replace(&self, peers: impl IntoIterator<Item = (TlsPublicKey, ParticipantId)>) {
        let mut map = self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *map = peers.into_iter().collect();
    }

    pub fn lookup(&self, key: &TlsPublicKey) -> Option<ParticipantId> {
        let map = self
            .0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(key).copied()
    }
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

/// Only TLS 1.3 is offered, so a TLS 1.2 signature never needs checking.
fn tls12_refused() -> Result<HandshakeSignatureValid, Error> {
    Err(Error::PeerIncompatible(
        rustls::PeerIncompatible::Tls12NotOffered,
    ))
}

fn unknown_key() -> Error {
    Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
}

/// For dialing: the server must present exactly `expected`.
#[derive(Debug)]
pub struct PinnedServer {
    expected: TlsPublicKey,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedServer {
    pub fn new(expected: TlsPublicKey) -> Arc<Self> {
        Arc::new(Self {
            expected,
            algorithms: algorithms(),
        })
    }
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match certificate_key(end_entity) {
            Some(key) if key == self.expected => Ok(ServerCertVerified::assertion()),
            _ => Err(unknown_key()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        tls12_refused()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// For listening: the client must present the key of a current participant.
#[derive(Debug)]
pub struct PinnedClients {
    directory: PeerDirectory,
    algorithms: WebPkiSupportedAlgorithms,
}

impl std::fmt::Debug for PeerDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerDirectory")
    }
}

impl PinnedClients {
    pub fn new(directory: PeerDirectory) -> Arc<Self> {
        Arc::new(Self {
            directory,
            algorithms: algorithms(),
        })
    }
}

impl ClientCertVerifier for PinnedClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let known = certificate_key(end_entity).and_then(|key| self.directory.lookup(&key));
        match known {
            Some(_) => Ok(ClientCertVerified::assertion()),
            None => Err(unknown_key()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        tls12_refused()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}
