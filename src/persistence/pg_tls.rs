//! PostgreSQL connections with TLS as libpq's `sslmode` and `sslrootcert` describe them
//! (rustls with the ring provider; no OpenSSL):
//!
//! * `disable` — plain TCP;
//! * `prefer` (libpq's default) — TLS when the server offers it, else plain;
//! * `require` — TLS, the certificate not checked (unless `sslrootcert` is given: then as
//!   `verify-ca`, as libpq does);
//! * `verify-ca` — TLS, the chain checked against `sslrootcert`, not the host name;
//! * `verify-full` — TLS, chain and host name checked.
//!
//! `sslrootcert` is a PEM file of CA certificates, or `system` for the web PKI roots (also
//! the default for the verifying modes without it). Every PostgreSQL connection — the pool,
//! the LISTEN connection and migrations — is made here.

use diesel::ConnectionError;
use diesel_async::AsyncPgConnection;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A PostgreSQL URL split into what tokio-postgres reads and the TLS settings it does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: String,
    pub mode: SslMode,
    pub rootcert: Option<String>,
}

/// Takes `sslmode` and `sslrootcert` out of `url`.
pub fn parse(url: &str) -> Result<Target, String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let (mut mode, mut rootcert) = (SslMode::Prefer, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "sslmode" => {
                mode = match v {
                    "disable" => SslMode::Disable,
                    // libpq's `allow` tries plain first; TLS when offered is the safer reading.
                    "allow" | "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode must be disable, prefer, require, verify-ca or verify-full, got {other:?}"
                        ));
                    }
                }
            }
            "sslrootcert" => {
                let decoded = url::form_urlencoded::parse(v.as_bytes()).next().map(|(k, _)| k.into_owned());
                rootcert = decoded.filter(|p| !p.is_empty());
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    Ok(Target { url, mode, rootcert })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(rootcert: Option<&str>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match rootcert {
        None | Some("system") => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| format!("sslrootcert {path}: {e}"))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| format!("sslrootcert {path}: {e}"))?;
                store.add(cert).map_err(|e| format!("sslrootcert {path}: {e}"))?;
            }
            if store.is_empty() {
                return Err(format!("sslrootcert {path} holds no certificate"));
            }
        }
    }
    Ok(store)
}

/// The rustls client configuration for `target`.
fn client_config(target: &Target) -> Result<ClientConfig, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let check_chain = matches!(target.mode, SslMode::VerifyCa | SslMode::VerifyFull) || target.rootcert.is_some();
    let config = if target.mode == SslMode::VerifyFull {
        builder.with_root_certificates(roots(target.rootcert.as_deref())?).with_no_client_auth()
    } else if check_chain {
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots(target.rootcert.as_deref())?),
            provider,
        )
        .build()
        .map_err(|e| e.to_string())?;
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyHostName(inner))).with_no_client_auth()
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(EncryptOnly(provider))).with_no_client_auth()
    };
    Ok(config)
}

/// Connects to the PostgreSQL server `url` names, with TLS as its `sslmode` says.
pub async fn connect(url: &str) -> diesel::ConnectionResult<AsyncPgConnection> {
    let target = parse(url).map_err(ConnectionError::BadConnection)?;
    let mut config: tokio_postgres::Config =
        target.url.parse().map_err(|e: tokio_postgres::Error| ConnectionError::BadConnection(e.to_string()))?;
    let failed = |e: tokio_postgres::Error| ConnectionError::BadConnection(e.to_string());
    if target.mode == SslMode::Disable {
        config.ssl_mode(tokio_postgres::config::SslMode::Disable);
        let (client, conn) = config.connect(tokio_postgres::NoTls).await.map_err(failed)?;
        return AsyncPgConnection::try_from_client_and_connection(client, conn).await;
    }
    config.ssl_mode(if target.mode == SslMode::Prefer {
        tokio_postgres::config::SslMode::Prefer
    } else {
        tokio_postgres::config::SslMode::Require
    });
    let tls =
        tokio_postgres_rustls::MakeRustlsConnect::new(client_config(&target).map_err(ConnectionError::BadConnection)?);
    let (client, conn) = config.connect(tls).await.map_err(failed)?;
    AsyncPgConnection::try_from_client_and_connection(client, conn).await
}

/// `verify-ca`: the chain must lead to a trusted root; the name in it does not matter.
#[derive(Debug)]
struct AnyHostName(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `require` without `sslrootcert`: encrypted, the certificate not checked (libpq's meaning);
/// the handshake signatures still are.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_rootcert_are_taken_out_of_the_url() {
        let t = parse("postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x").unwrap();
        assert_eq!(t.url, "postgres://u@h/db?application_name=x");
        assert_eq!((t.mode, t.rootcert.as_deref()), (SslMode::VerifyFull, Some("/etc/ca.pem")));
        assert_eq!(parse("postgres://u@h/db").unwrap().mode, SslMode::Prefer);
        assert_eq!(parse("postgres://u@h/db?sslmode=disable").unwrap().url, "postgres://u@h/db");
        assert!(parse("postgres://u@h/db?sslmode=sometimes").is_err());
    }
}
