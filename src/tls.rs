//! TLS on both sides, with rustls (ring provider). The listener terminates TLS with a
//! certificate and key read from PEM files and offers HTTP/2 and HTTP/1.1 by ALPN; a reload
//! swaps the certificate for new handshakes. Upstreams may be `https://`, verified against the
//! system's roots plus an optional configured CA.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::ring::default_provider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Certificate chain and private key files (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(default_provider())
}

/// A TLS file or setting that cannot be used; the text names the key and the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

fn load_key(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let fail = |what: &str, path: &Path, e: &dyn fmt::Display| {
        TlsError(format!(
            "server.tls.{what}: cannot use {}: {e}",
            path.display()
        ))
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| fail("cert", &files.cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| fail("cert", &files.cert, &e))?;
    if chain.is_empty() {
        return Err(fail("cert", &files.cert, &"no certificate in the file"));
    }
    // The error text of a key parse never contains key material.
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| fail("key", &files.key, &e))?;
    CertifiedKey::from_der(chain, key, &default_provider()).map_err(|e| fail("key", &files.key, &e))
}

/// The listener's certificate, swappable on reload.
pub struct TlsReloader {
    current: ArcSwap<CertifiedKey>,
}

impl fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsReloader")
    }
}

impl ResolvesServerCert for TlsReloader {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl TlsReloader {
    pub fn new(files: &TlsFiles) -> Result<Arc<Self>, TlsError> {
        Ok(Arc::new(TlsReloader {
            current: ArcSwap::from_pointee(load_key(files)?),
        }))
    }

    /// Loads the files of a reloaded configuration; the old certificate stays on error.
    pub fn reload(&self, files: Option<&TlsFiles>) -> Result<(), TlsError> {
        let files = files.ok_or_else(|| {
            TlsError("server.tls: TLS cannot be turned off by a reload; restart instead".into())
        })?;
        self.current.store(Arc::new(load_key(files)?));
        Ok(())
    }

    /// An acceptor offering h2 and http/1.1.
    pub fn acceptor(self: &Arc<Self>) -> Result<TlsAcceptor, TlsError> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(format!("server.tls: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// The client configuration for `https://` upstreams: system roots plus `extra_ca`.
pub fn upstream_client_config(extra_ca: Option<&Path>) -> Result<ClientConfig, TlsError> {
    client_config(extra_ca, "upstream_tls.ca")
}

/// A client configuration trusting the system's roots plus `extra_ca`; `setting` names the
/// configuration key of the CA file in errors.
pub fn client_config(extra_ca: Option<&Path>, setting: &str) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = extra_ca {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| TlsError(format!("{setting}: cannot read {}: {e}", path.display())))?;
        let mut added = 0;
        for cert in certs {
            let cert = cert.map_err(|e| TlsError(format!("{setting}: {}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| TlsError(format!("{setting}: {}: {e}", path.display())))?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsError(format!(
                "{setting}: no certificate in {}",
                path.display()
            )));
        }
    }
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| TlsError(format!("{setting}: {e}")))
}
