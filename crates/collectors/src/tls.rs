//! The certificates collectors trust and the TLS client settings built from them: the system's
//! roots plus an optional CA file (`CAPSTATS_COLLECTOR_CA_FILE`) for `verify-full`, and a
//! verifier that checks the handshake's signatures but not the certificate for `require`.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use capstats_capacity_model::TlsMode;

use crate::CollectorError;

/// What collectors trust, loaded once per process.
#[derive(Clone)]
pub struct TlsTrust {
    /// The trusted roots, for the MySQL driver, which builds its own TLS configuration.
    roots: Arc<Vec<CertificateDer<'static>>>,
    /// `verify-full`: chain to a trusted root and host name checked.
    verified: Arc<ClientConfig>,
    /// `require`: any certificate, signatures still checked.
    unverified: Arc<ClientConfig>,
}

impl std::fmt::Debug for TlsTrust {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TlsTrust")
            .field("roots", &self.roots.len())
            .finish_non_exhaustive()
    }
}

/// The ring provider, which the rest of the dependency tree (sqlx, apalis) also uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsTrust {
    /// The system's trusted roots (the platform store; on Linux also `SSL_CERT_FILE` and
    /// `SSL_CERT_DIR`, which configure the system's trust, not the connection) plus every
    /// certificate of `ca_file` (PEM).
    pub fn load(ca_file: Option<&Path>) -> Result<Self, CollectorError> {
        let system = rustls_native_certs::load_native_certs();
        let mut roots = system.certs;
        if roots.is_empty() && ca_file.is_none() {
            return Err(CollectorError::Trust {
                what: "the system's trusted certificates".into(),
                reason: format!(
                    "none could be loaded ({}); install the CA certificates package or set \
                     CAPSTATS_COLLECTOR_CA_FILE",
                    system
                        .errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                source: None,
            });
        }
        if let Some(file) = ca_file {
            roots.extend(read_ca_file(file)?);
        }
        Self::with_roots(roots)
    }

    /// Trusts exactly `roots` (tests; deployments use [`load`](Self::load)).
    pub fn with_roots(roots: Vec<CertificateDer<'static>>) -> Result<Self, CollectorError> {
        // The MySQL driver builds its configuration with the process's default provider; make
        // it the same one rather than depend on which providers the features compiled in.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut store = RootCertStore::empty();
        // Unusable system certificates are skipped, as every TLS client does; a bad CA file
        // was refused by `read_ca_file` already.
        let (_added, _ignored) = store.add_parsable_certificates(roots.iter().cloned());
        let builder = |provider: Arc<CryptoProvider>| {
            ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|error| CollectorError::Trust {
                    what: "TLS configuration".into(),
                    reason: error.to_string(),
                    source: None,
                })
        };
        let verified = builder(provider())?
            .with_root_certificates(store)
            .with_no_client_auth();
        let unverified = builder(provider())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
            .with_no_client_auth();
        Ok(Self {
            roots: Arc::new(roots),
            verified: Arc::new(verified),
            unverified: Arc::new(unverified),
        })
    }

    /// The TLS client configuration of `mode`; none for `disable`.
    pub fn client_config(&self, mode: TlsMode) -> Option<Arc<ClientConfig>> {
        match mode {
            TlsMode::Disable => None,
            TlsMode::Require => Some(self.unverified.clone()),
            TlsMode::VerifyFull => Some(self.verified.clone()),
        }
    }

    /// The trusted roots (DER).
    pub fn roots(&self) -> &[CertificateDer<'static>] {
        &self.roots
    }
}

/// Every certificate of a PEM file; a file without one is refused, since `verify-full` would
/// otherwise silently trust less than the operator meant.
fn read_ca_file(file: &Path) -> Result<Vec<CertificateDer<'static>>, CollectorError> {
    let what = format!("CAPSTATS_COLLECTOR_CA_FILE {}", file.display());
    let text = std::fs::read(file).map_err(|error| CollectorError::Trust {
        what: what.clone(),
        reason: "cannot be read".into(),
        source: Some(error),
    })?;
    let certificates = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| CollectorError::Trust {
            what: what.clone(),
            reason: format!("is not valid PEM: {error}"),
            source: None,
        })?;
    if certificates.is_empty() {
        return Err(CollectorError::Trust {
            what,
            reason: "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
            source: None,
        });
    }
    Ok(certificates)
}

/// `require`: accepts any certificate, as libpq's `sslmode=require` does, but still checks
/// that the server holds the key of the certificate it presented.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let file = std::env::temp_dir().join(format!("capstats-empty-ca-{}", std::process::id()));
        std::fs::write(&file, "not a certificate\n").unwrap();
        let error = TlsTrust::load(Some(&file)).unwrap_err();
        assert!(
            error.to_string().contains("CAPSTATS_COLLECTOR_CA_FILE"),
            "{error}"
        );
        std::fs::remove_file(&file).unwrap();
        let missing = TlsTrust::load(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(missing.to_string().contains("cannot be read"), "{missing}");
    }

    #[test]
    fn each_mode_has_its_configuration() {
        let trust = TlsTrust::with_roots(Vec::new()).unwrap();
        assert!(trust.client_config(TlsMode::Disable).is_none());
        assert!(trust.client_config(TlsMode::Require).is_some());
        assert!(trust.client_config(TlsMode::VerifyFull).is_some());
    }
}
