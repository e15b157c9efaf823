//! The test certificate authority behind [`super::Upstream::serve_https`]:
//! a fresh CA and a server certificate for the loopback names, written
//! where apt and reqwest can be told to trust it.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

/// A test certificate authority and a server certificate for `127.0.0.1` and `localhost`.
pub struct TestCa {
    ca_pem: String,
    server_cert_der: Vec<u8>,
    server_key_der: Vec<u8>,
    dir: tempfile::TempDir,
}

impl TestCa {
    /// Generates a CA and a server certificate signed by it (valid for `127.0.0.1`, `::1`,
    /// `localhost` and the extra DNS `names`), and writes the CA certificate to a temporary
    /// `ca.pem`.
    pub fn generate(names: &[&str]) -> Result<TestCa> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "testkit CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().context("CA key")?;
        let ca_cert = ca_params.self_signed(&ca_key).context("CA certificate")?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut sans: Vec<String> = vec!["127.0.0.1".into(), "::1".into(), "localhost".into()];
        sans.extend(names.iter().map(|s| s.to_string()));
        let mut params = CertificateParams::new(sans)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "testkit upstream");
        params.use_authority_key_identifier_extension = true;
        params
            .extended_key_usages
            .push(rcgen::ExtendedKeyUsagePurpose::ServerAuth);
        let key = KeyPair::generate().context("server key")?;
        let cert = params
            .signed_by(&key, &issuer)
            .context("server certificate")?;

        let dir = tempfile::tempdir().context("CA temp dir")?;
        let ca_pem = ca_cert.pem();
        std::fs::write(dir.path().join("ca.pem"), &ca_pem).context("writing ca.pem")?;
        Ok(TestCa {
            ca_pem,
            server_cert_der: cert.der().to_vec(),
            server_key_der: key.serialize_der(),
            dir,
        })
    }

    /// The CA certificate, PEM.
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Path of a file holding the CA certificate (PEM); lives as long as the `TestCa`.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A rustls server configuration presenting the server certificate (HTTP/1.1 ALPN).
    pub fn server_config(&self) -> Result<rustls::ServerConfig> {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(self.server_cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone())),
            )
            .context("TLS server certificate")?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(cfg)
    }
}
