//! What a port speaks when it does not speak plaintext HTTP/2: sent the
//! first line of the HTTP/2 client preface (a complete HTTP/1 request in
//! form), an HTTP/1 server answers `HTTP/1.1 400` or `505`, and a TLS server
//! a TLS alert; an HTTP/2 server waits for the rest. Without this a user sees
//! only an h2 frame error or a cancelled connection.

use crate::net::Address;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The HTTP/2 preface's first part. Sending no more leaves nothing unread on an
/// HTTP/1 server, so its answer is not lost to a reset when it closes.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\n";

/// A sentence saying what `addr` speaks instead of HTTP/2, when it is unmistakably HTTP/1 or TLS.
/// With `tls`, fdsoak spoke TLS itself: only a plaintext or HTTP/1 answer is worth naming.
pub(crate) async fn sniff(addr: &Address, timeout: Duration, tls: bool) -> Option<String> {
    if tls {
        return None;
    }
    let probe = async {
        let mut s = addr.connect().await.ok()?;
        s.write_all(PREFACE).await.ok()?;
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf).await.ok()?;
        classify(&buf[..n])
    };
    tokio::time::timeout(timeout.min(Duration::from_secs(1)), probe)
        .await
        .ok()
        .flatten()
}

fn classify(first: &[u8]) -> Option<String> {
    // An HTTP/1 status line, or (from servers that take the preface for HTTP/0.9) an HTML page.
    if first.starts_with(b"HTTP/1.") || first.starts_with(b"HTTP/0.") || first.starts_with(b"<") {
        Some("speaks HTTP/1, not gRPC (HTTP/2): is this the server's gRPC port?".into())
    } else if matches!(first, [0x15 | 0x16, 0x03, ..]) {
        Some(
            "speaks TLS, but fdsoak connected in plaintext: give its CA in a [tls] table (or --cacert), or --insecure"
                .into(),
        )
    } else {
        None
    }
}

/// A sentence for a TLS handshake that failed on the server's certificate, from the error text.
pub(crate) fn tls_refusal(error: &str, transport: &crate::transport::Transport) -> Option<String> {
    if !transport.is_tls() {
        return None;
    }
    let at = error.find("invalid peer certificate: ")?;
    let why: String = error[at + 26..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '(' || *c == ')')
        .collect();
    Some(format!(
        "presented a certificate fdsoak does not trust ({why}): give the CA that signed it ([tls] ca, --cacert), the name it was issued for ([tls] server_name, --servername), or --insecure"
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn http1_and_tls_replies_are_told_apart_from_http2() {
        assert!(super::classify(b"HTTP/1.1 400 Bad").unwrap().contains("HTTP/1"));
        assert!(super::classify(b"<!DOCTYPE HTML>").unwrap().contains("HTTP/1"));
        assert!(super::classify(&[0x15, 0x03, 0x03, 0x00, 0x02])
            .unwrap()
            .contains("TLS"));
        // An HTTP/2 server answers with its SETTINGS frame.
        assert_eq!(super::classify(&[0, 0, 6, 4, 0, 0, 0, 0, 0]), None);
        assert_eq!(super::classify(b""), None);
    }
}
