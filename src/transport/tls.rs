//! TLS for the driver's own connections ([`super::conn`]): the same `[tls]`
//! settings tonic's channels get, as a rustls client config with ALPN `h2`.
//! `insecure_skip_verify` accepts any server certificate ([`AcceptAny`]).
//!
//! The client key is held only as bytes in memory; nothing here formats it.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::sync::Arc;

/// The `[tls]` files as read, for building a client config.
#[derive(Clone, Default)]
pub struct Pems {
    pub ca: Option<Vec<u8>>,
    /// Certificate chain and private key.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    pub insecure: bool,
    /// The fault proxy's certificate chain and private key (`proxy_cert`, `proxy_key`).
    pub proxy: Option<(Vec<u8>, Vec<u8>)>,
}

/// The fault proxy's server config: its certificate and key, ALPN `h2`.
pub(super) fn server_config(cert: &[u8], key: &[u8]) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = CertificateDer::pem_slice_iter(cert).collect::<Result<Vec<_>, _>>()?;
    // The key's own error would not name the file, and must not show it.
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|_| anyhow::anyhow!("[tls] proxy_key holds no private key in PEM"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// What a TLS connection needs: the config and the name the server must prove.
#[derive(Clone)]
pub struct Client {
    pub config: Arc<ClientConfig>,
    pub name: ServerName<'static>,
}

impl Client {
    /// A client config like tonic's: the CA given, else the system's roots (or no
    /// verification when insecure); the identity for mutual TLS; ALPN `h2`.
    pub fn new(pems: &Pems, name: &str) -> anyhow::Result<Client> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions()?;
        let builder = if pems.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny::new()))
        } else {
            let mut roots = RootCertStore::empty();
            match &pems.ca {
                Some(ca) => {
                    for cert in CertificateDer::pem_slice_iter(ca) {
                        roots.add(cert?)?;
                    }
                }
                None => {
                    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                }
            }
            builder.with_root_certificates(roots)
        };
        let mut config = match &pems.identity {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(cert).collect::<Result<Vec<_>, _>>()?;
                // The key's own error would not name the file, and must not show it.
                let key = PrivateKeyDer::from_pem_slice(key)
                    .map_err(|_| anyhow::anyhow!("[tls] key holds no private key in PEM"))?;
                builder.with_client_auth_cert(chain, key)?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Client {
            config: Arc::new(config),
            name: ServerName::try_from(name.to_string())?,
        })
    }
}

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::UnixTime;
use rustls::{DigitallySignedStruct, SignatureScheme};

/// `insecure_skip_verify`: any server certificate is accepted; the handshake's
/// signatures are still checked, so the connection is encrypted, just not authenticated.
#[derive(Debug)]
pub(super) struct AcceptAny(CryptoProvider);

impl AcceptAny {
    pub(super) fn new() -> Self {
        AcceptAny(rustls::crypto::ring::default_provider())
    }
}

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
