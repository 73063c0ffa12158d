//! TLS on the Kafka listener: rustls with the ring provider, its server
//! configuration read at start-up from a PEM certificate chain and a PEM
//! private key, so a missing, unreadable, empty or mismatched file stops
//! `weir serve` before it listens, never at a client's first connection.
//!
//! Each connection's handshake runs in that connection's task under
//! [`HANDSHAKE_TIMEOUT`]; one that fails (a plaintext client, a client that
//! does not trust the certificate, a silent peer) ends that connection only.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::KafkaError;

/// How long a client has to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The acceptor for a listener whose certificate chain is in `cert` (PEM,
/// leaf first) and whose private key is in `key` (PEM: PKCS#8, PKCS#1 or
/// SEC1).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, KafkaError> {
    let pem_error = |path: &Path, what: &'static str| {
        let path = path.to_path_buf();
        move |source| KafkaError::TlsFile { path, what, source }
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(pem_error(cert, "a PEM certificate chain"))?;
    if certs.is_empty() {
        return Err(pem_error(cert, "a PEM certificate chain")(
            rustls::pki_types::pem::Error::NoItemsFound,
        ));
    }
    let private_key =
        PrivateKeyDer::from_pem_file(key).map_err(pem_error(key, "a PEM private key"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| {
            builder
                .with_no_client_auth()
                .with_single_cert(certs, private_key)
        })
        .map_err(|source| KafkaError::TlsConfig {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            source,
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
