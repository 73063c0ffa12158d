//! Certificates for the TLS tests, made fresh by each test with `rcgen`: a
//! certificate authority, and a server certificate it signed for
//! `127.0.0.1` and `localhost`, written as PEM files in a temporary
//! directory that clients (`ssl.ca.location`) and `weir serve`
//! (`--kafka-tls-cert`, `--kafka-tls-key`) read.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// PEM files of a test CA and a server certificate it signed.
pub struct TestCerts {
    _dir: tempfile::TempDir,
    /// The CA certificate clients trust.
    pub ca: PathBuf,
    /// The server's certificate (leaf, signed by the CA).
    pub cert: PathBuf,
    /// The server certificate's private key (PKCS#8).
    pub key: PathBuf,
    /// A private key that belongs to no certificate here.
    pub stray_key: PathBuf,
}

impl TestCerts {
    pub fn new() -> TestCerts {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "weir test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key).expect("the CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().expect("a server key");
        let mut params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("server params");
        params.distinguished_name.push(DnType::CommonName, "weir");
        let cert = params
            .signed_by(&key, &issuer)
            .expect("the server certificate");
        let stray = KeyPair::generate().expect("a stray key");
        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("write a PEM file");
            path
        };
        TestCerts {
            ca: write("ca.pem", ca.pem()),
            cert: write("server.pem", cert.pem()),
            key: write("server.key", key.serialize_pem()),
            stray_key: write("stray.key", stray.serialize_pem()),
            _dir: dir,
        }
    }
}

impl Default for TestCerts {
    fn default() -> Self {
        TestCerts::new()
    }
}
