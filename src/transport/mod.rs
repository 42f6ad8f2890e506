//! How fdsoak reaches a target: plaintext HTTP/2, or TLS (a CA, a client
//! identity for mutual TLS, a server name, or no verification at all), with
//! the scenario's metadata on every call. Every dial of the target (the
//! workloads' channels, the readiness check, reflection) goes through one
//! [`Transport`], so TLS and metadata are the same everywhere.
//!
//! Secrets stop here: metadata values are expanded from the environment only
//! in memory, and neither they nor the key's path are ever formatted.

pub(crate) mod conn;
mod h2body;
pub(crate) mod heard;
pub(crate) mod stages;
mod tls;
pub(crate) mod unary;

use crate::net::Address;
use crate::scenario::{KeyPath, Scenario};
use std::path::Path;
use std::sync::Arc;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};

/// The largest PEM file read.
const MAX_PEM: u64 = 1 << 20;

/// TLS settings and metadata, loaded once per run.
#[derive(Clone, Default)]
pub struct Transport {
    tls: Option<Tls>,
    metadata: Vec<(AsciiMetadataKey, AsciiMetadataValue)>,
}

#[derive(Clone)]
struct Tls {
    identity: bool,
    server_name: Option<String>,
    /// The files as read, for every connection's rustls config ([`conn`]); the key never leaves memory.
    pems: tls::Pems,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.metadata.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Transport")
            .field("tls", &self.tls.is_some())
            .field("metadata_keys", &keys)
            .finish()
    }
}

impl Transport {
    /// Reads the scenario's `[tls]` files and expands its metadata. Errors name the key.
    pub fn load(sc: &Scenario) -> Result<Transport, (KeyPath, String)> {
        let root = KeyPath::default();
        let mut metadata = Vec::new();
        for (k, v) in &sc.metadata {
            let at = || root.key("metadata").key(k);
            let key = AsciiMetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                .map_err(|_| (at(), format!("{k:?} is not a valid metadata key")))?;
            let value = expand(v.expose()).map_err(|m| (at(), m))?;
            let value = AsciiMetadataValue::try_from(value.as_str()).map_err(|_| {
                (
                    at(),
                    "the value is not printable ASCII (it is not shown here)".to_string(),
                )
            })?;
            metadata.push((key, value));
        }
        let tls = match &sc.tls {
            None => None,
            Some(t) => {
                let at = |k: &str| root.key("tls").key(k);
                let read = |p: &Path, key: &str, shown: bool| {
                    crate::scenario::read_bounded(p, MAX_PEM).map_err(|e| {
                        let what = if shown {
                            format!("{}: ", p.display())
                        } else {
                            String::new()
                        };
                        (at(key), format!("{what}cannot read: {e}"))
                    })
                };
                let mut pems = tls::Pems::default();
                if let Some(ca) = &t.ca {
                    pems.ca = Some(read(ca, "ca", true)?);
                }
                match (&t.cert, &t.key) {
                    (Some(cert), Some(key)) => {
                        let (path, cert) = (cert, read(cert, "cert", true)?);
                        let key = read(Path::new(key.expose()), "key", false)?;
                        if let Some(problem) = client_cert_problem(&cert) {
                            return Err((at("cert"), format!("{}: {problem}", path.display())));
                        }
                        pems.identity = Some((cert, key));
                    }
                    (Some(_), None) => return Err((at("key"), "a client certificate needs its key".into())),
                    (None, Some(_)) => return Err((at("cert"), "a client key needs its certificate".into())),
                    (None, None) => {}
                }
                if let (Some(cert), Some(key)) = (&t.proxy_cert, &t.proxy_key) {
                    let cert = read(cert, "proxy_cert", true)?;
                    let key = read(Path::new(key.expose()), "proxy_key", false)?;
                    if let Err(e) = tls::server_config(&cert, &key) {
                        return Err((at("proxy_cert"), format!("the fault proxy cannot present it: {e}")));
                    }
                    pems.proxy = Some((cert, key));
                }
                pems.insecure = t.insecure_skip_verify;
                Some(Tls {
                    pems,
                    identity: t.cert.is_some(),
                    server_name: t.server_name.clone(),
                })
            }
        };
        Ok(Transport { tls, metadata })
    }

    /// Whether calls go over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether fdsoak presents a client certificate (mutual TLS).
    pub fn has_identity(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.identity)
    }

    /// The `:authority` of calls to `addr`: the address itself, or for a Unix socket
    /// (which has no host) `[tls] server_name`, else `localhost`, as gRPC's own clients do.
    pub fn authority(&self, addr: &Address) -> String {
        match addr {
            Address::Tcp(a) => a.to_string(),
            _ => self
                .tls
                .as_ref()
                .and_then(|t| t.server_name.clone())
                .unwrap_or_else(|| "localhost".into()),
        }
    }

    /// The rustls settings and the name to verify, for a TLS connection to `addr`
    /// made by the driver itself ([`conn`]); `None` in plaintext.
    pub fn rustls(&self, addr: &Address) -> anyhow::Result<Option<tls::Client>> {
        let Some(t) = &self.tls else { return Ok(None) };
        let name = match (&t.server_name, addr) {
            (Some(n), _) => n.clone(),
            (None, Address::Tcp(a)) => a.ip().to_string(),
            (None, _) => "localhost".into(),
        };
        Ok(Some(tls::Client::new(&t.pems, &name)?))
    }

    /// The fault proxy's TLS, when it ends TLS (`[tls] proxy_cert`, `proxy_key`): its server
    /// config, and the client config and name to connect on to the target at `upstream`.
    pub fn proxy_tls(&self, upstream: &Address) -> anyhow::Result<Option<(Arc<rustls::ServerConfig>, tls::Client)>> {
        let Some((cert, key)) = self.tls.as_ref().and_then(|t| t.pems.proxy.as_ref()) else {
            return Ok(None);
        };
        let server = tls::server_config(cert, key)?;
        Ok(self.rustls(upstream)?.map(|client| (server, client)))
    }

    /// `error`, with a hint when it is not the scenario's fault but the transport's: a
    /// TLS connection the server closed without a client certificate, or credentials
    /// (`code` UNAUTHENTICATED or PERMISSION_DENIED) it refused. Readiness, reflection
    /// and the rpc readiness check all explain failures this way.
    pub fn explain(&self, error: &str, code: Option<tonic::Code>) -> String {
        // The connection was made, then dropped: how a server refuses a missing client
        // certificate. Under TLS 1.3 the refusal comes after the handshake, so the first
        // call sees either the broken connection or its own cancellation, by timing.
        let cancelled = code == Some(tonic::Code::Cancelled) || error.contains("operation was canceled");
        let after_connect = error.contains("transport error") || error.contains("h2 protocol error");
        let dropped = (after_connect || cancelled) && !error.contains("connect error:");
        let hint = match code {
            _ if self.is_tls() && !self.has_identity() && dropped => {
                "the server closed the TLS connection: if it requires a client certificate, give [tls] cert and key, or --cert and --key"
            }
            Some(tonic::Code::Unauthenticated | tonic::Code::PermissionDenied) if self.metadata.is_empty() => {
                "the server wants credentials: give them as `metadata` in the scenario, or -H \"authorization: Bearer ...\""
            }
            Some(tonic::Code::Unauthenticated | tonic::Code::PermissionDenied) => {
                "the server refused the credentials sent: check the scenario's `metadata` (or -H) and the variables it takes"
            }
            _ => return error.to_string(),
        };
        format!("{error} ({hint})")
    }

    /// Adds the scenario's metadata to a request's headers (the calls made without tonic).
    pub fn add_headers(&self, headers: &mut http::HeaderMap) {
        for (k, v) in &self.metadata {
            if let (Ok(k), Ok(v)) = (
                http::HeaderName::from_bytes(k.as_str().as_bytes()),
                http::HeaderValue::from_bytes(v.as_encoded_bytes()),
            ) {
                headers.insert(k, v);
            }
        }
    }

    /// Adds the scenario's metadata to a request.
    pub fn decorate<T>(&self, req: &mut tonic::Request<T>) {
        let m = req.metadata_mut();
        for (k, v) in &self.metadata {
            m.insert(k.clone(), v.clone());
        }
    }
}

/// Why a client certificate (PEM) cannot be used, if it cannot: TLS takes only
/// X.509 v3, and `openssl x509 -req` without an extensions file makes v1. The
/// server would refuse it with an alert that looks like its own certificate's fault.
fn client_cert_problem(pem: &[u8]) -> Option<String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let der = match CertificateDer::pem_slice_iter(pem).next() {
        Some(Ok(der)) => der,
        Some(Err(e)) => return Some(format!("not a PEM certificate: {e}")),
        None => return Some("holds no PEM certificate".into()),
    };
    match webpki::EndEntityCert::try_from(&der) {
        Err(webpki::Error::UnsupportedCertVersion) => Some(
            "the client certificate is not X.509 v3 (`openssl x509 -req` without `-extfile` makes v1); TLS needs v3: sign it again with an extensions file, e.g. one holding `extendedKeyUsage = clientAuth`".into(),
        ),
        // Anything else is the handshake's to judge: another server may take what webpki would not.
        _ => None,
    }
}

/// Where and how to reach the target: its address, and the [`Transport`] to
/// speak there. Every dial of the target takes one.
#[derive(Debug, Clone)]
pub struct Dial {
    pub addr: Address,
    pub transport: Arc<Transport>,
}

impl Dial {
    pub fn new(addr: Address, transport: Arc<Transport>) -> Dial {
        Dial { addr, transport }
    }

    /// The same transport at another address (the fault proxy in front of the target).
    pub fn at(&self, addr: Address) -> Dial {
        Dial::new(addr, self.transport.clone())
    }

    /// One connection, dialled now through the load's own path ([`conn::Connector`]),
    /// TLS and HTTP/2 preface included, bounded by `timeout`; no keepalive. For checks
    /// that run beside the load (readiness, reflection), so they test what it uses.
    pub async fn connect(&self, timeout: std::time::Duration) -> Result<conn::Conn, conn::DialError> {
        let connector = conn::Connector::new(self, timeout, None).map_err(|e| conn::DialError {
            code: tonic::Code::Unavailable,
            message: format!("transport error: {e:#}"),
        })?;
        connector.dial().await
    }
}

/// Makes the `[tls]` file paths absolute: relative ones are taken from the scenario
/// file's directory, then from the current directory. A missing file names its key
/// (and, for the private key, not its path).
pub(crate) fn resolve(sc: &mut Scenario, file: &Path) -> Result<(), crate::scenario::ScenarioError> {
    let Some(t) = &mut sc.tls else { return Ok(()) };
    let find = |p: &Path| crate::scenario::locate_file(file, p);
    let at = |k: &str| KeyPath::default().key("tls").key(k);
    for (key, path) in [("ca", &mut t.ca), ("cert", &mut t.cert)] {
        if let Some(p) = path {
            *p = find(p)
                .ok_or_else(|| crate::scenario::error_at(file, &at(key), format!("{}: no such file", p.display())))?;
        }
    }
    if let Some(k) = &mut t.key {
        let found = find(Path::new(k.expose()))
            .ok_or_else(|| crate::scenario::error_at(file, &at("key"), "no such file (the path is not shown)"))?;
        *k = crate::scenario::Secret::new(found.to_string_lossy());
    }
    Ok(())
}

/// Every secret value of `sc`, as the run uses them (metadata values with `${NAME}`
/// expanded, and the key paths), to keep out of what the processes fdsoak starts wrote.
pub(crate) fn secret_values(sc: &Scenario) -> Vec<String> {
    let mut out = Vec::new();
    for v in sc.metadata.values() {
        let mut values = vec![v.expose().to_string()];
        values.extend(expand(v.expose()));
        for v in values {
            // "Bearer TOKEN", "Basic B64": a program may print the credential alone.
            if let Some((_, credential)) = v.rsplit_once(' ').filter(|(_, c)| c.len() >= 8) {
                out.push(credential.to_string());
            }
            out.push(v);
        }
    }
    // The longest first, so a value is redacted whole before a part of it is looked for.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    if let Some(t) = &sc.tls {
        out.extend(t.key.iter().chain(&t.proxy_key).map(|k| k.expose().to_string()));
    }
    out.retain(|s| !s.is_empty());
    out
}

/// Replaces each `${NAME}` with the environment variable NAME; an unset one is an error.
fn expand(value: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or("an unclosed ${ in the value")?;
        let name = &after[..end];
        let v = std::env::var(name).map_err(|_| format!("the environment variable {name} is not set"))?;
        out.push_str(&v);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn environment_variables_expand_and_an_unset_one_is_named() {
        std::env::set_var("FDSOAK_TEST_TOKEN_X", "s3cr3t");
        assert_eq!(
            super::expand("Bearer ${FDSOAK_TEST_TOKEN_X}!").unwrap(),
            "Bearer s3cr3t!"
        );
        assert_eq!(super::expand("plain").unwrap(), "plain");
        let e = super::expand("${FDSOAK_TEST_UNSET_Y}").unwrap_err();
        assert!(e.contains("FDSOAK_TEST_UNSET_Y") && !e.contains("s3cr3t"), "{e}");
        assert!(super::expand("${OPEN").is_err());
    }
}
