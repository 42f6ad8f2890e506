//! One unary gRPC call straight over HTTP/2, without tonic's codec: the
//! `health_check` workload's call. What every call sends (the method's path,
//! the headers, the encoded message) is built once per workload
//! ([`Prepared`]); a call clones the headers, opens a stream with its HEADERS
//! and one DATA frame that ends it, and reads the answer to its end: the
//! response's headers, its DATA (handed back to flow control unread: a health
//! check counts the answer, it does not decode it) and the trailers'
//! `grpc-status`. An answer with no body (an error) carries its status in its
//! headers; an HTTP status other than 200 without one maps to a code as gRPC's
//! HTTP mapping says. h2 errors read as [`super::h2body::code_of`] reads them,
//! as they do under tonic's clients, with what the server said ([`Answer`]).

use super::conn::{Conn, AGENT};
use super::h2body::code_of;
use super::heard::Cause;
use super::Transport;
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, TE, USER_AGENT};
use http::uri::PathAndQuery;
use std::time::Duration;
use tokio::time::Instant;
use tonic::Code;

/// What every call of a workload sends, built once.
#[derive(Debug, Clone)]
pub struct Prepared {
    path: PathAndQuery,
    headers: HeaderMap,
    body: Bytes,
}

impl Prepared {
    /// A call of `path` with `message`, the run's metadata, and `deadline` sent as `grpc-timeout`.
    pub fn new(
        path: &'static str,
        message: &impl prost::Message,
        deadline: Duration,
        transport: &Transport,
    ) -> Prepared {
        let len = message.encoded_len();
        let mut body = BytesMut::with_capacity(5 + len);
        body.put_u8(0); // not compressed
        body.put_u32(len as u32);
        message.encode_raw(&mut body);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(TE, HeaderValue::from_static("trailers"));
        headers.insert(USER_AGENT, HeaderValue::from_static(AGENT));
        headers.insert(
            HeaderName::from_static("grpc-timeout"),
            HeaderValue::from_str(&grpc_timeout(deadline)).unwrap_or_else(|_| HeaderValue::from_static("99999999H")),
        );
        transport.add_headers(&mut headers);
        Prepared {
            path: PathAndQuery::from_static(path),
            headers,
            body: body.freeze(),
        }
    }
}

/// A deadline as `grpc-timeout` writes it: at most eight digits and the finest unit that fits.
fn grpc_timeout(d: Duration) -> String {
    let nanos = d.as_nanos();
    let units: [(u128, char); 6] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ];
    for (per, unit) in units {
        let v = nanos / per;
        if v < 100_000_000 {
            return format!("{v}{unit}");
        }
    }
    "99999999H".into()
}

/// How a unary call ended: its status code, and, when it failed at the HTTP/2 level,
/// what the server said there (its reset of the stream, or the connection's GOAWAY).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub code: Code,
    pub cause: Option<Cause>,
}

impl From<Code> for Answer {
    fn from(code: Code) -> Answer {
        Answer { code, cause: None }
    }
}

impl Conn {
    /// Sends `call` on a new stream and reads its answer to the end. `due` is the
    /// call's due time, for the lag breakdown.
    pub async fn unary(&mut self, call: &Prepared, due: Instant) -> Answer {
        if let Err(e) = std::future::poll_fn(|cx| self.send.poll_ready(cx)).await {
            return self.failed(&e, true);
        }
        let mut req = http::Request::new(());
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = match self.uri(call.path.clone()) {
            Ok(uri) => uri,
            Err(_) => return Code::Internal.into(),
        };
        *req.headers_mut() = call.headers.clone();
        let (response, mut stream) = match self.send.send_request(req, false) {
            Ok(v) => v,
            Err(e) => return self.failed(&e, true),
        };
        if let Err(e) = stream.send_data(call.body.clone(), true) {
            return self.failed(&e, false);
        }
        self.handed(due);
        match response.await {
            Ok(answer) => match read_answer(answer).await {
                Ok(code) => code.into(),
                Err(e) => self.failed(&e, false),
            },
            Err(e) => self.failed(&e, false),
        }
    }

    /// A call that failed with `e`; `refused` when its stream was never opened.
    fn failed(&self, e: &h2::Error, refused: bool) -> Answer {
        Answer {
            code: if refused { self.refused(e).code() } else { code_of(e) },
            cause: self.heard.cause_of(e),
        }
    }
}

/// Reads an answer to its end: its status, from the headers or the trailers.
async fn read_answer(answer: http::Response<h2::RecvStream>) -> Result<Code, h2::Error> {
    let (head, mut recv) = answer.into_parts();
    if let Some(code) = grpc_status(&head.headers) {
        return Ok(code);
    }
    if head.status != http::StatusCode::OK {
        return Ok(from_http(head.status));
    }
    while let Some(data) = recv.data().await {
        let data = data?;
        let _ = recv.flow_control().release_capacity(data.len());
    }
    Ok(match recv.trailers().await? {
        Some(trailers) => grpc_status(&trailers).unwrap_or(Code::Unknown),
        None => Code::Unknown,
    })
}

/// The `grpc-status` in `headers`, if there is one.
fn grpc_status(headers: &HeaderMap) -> Option<Code> {
    let v = headers.get("grpc-status")?;
    let n: i32 = v.to_str().ok()?.trim().parse().ok()?;
    Some(Code::from_i32(n))
}

/// An HTTP status with no gRPC status, as gRPC's HTTP mapping reads it.
fn from_http(status: http::StatusCode) -> Code {
    match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_are_written_in_the_finest_unit_that_fits_eight_digits() {
        assert_eq!(grpc_timeout(Duration::from_secs(5)), "5000000u");
        assert_eq!(grpc_timeout(Duration::from_millis(50)), "50000000n");
        assert_eq!(grpc_timeout(Duration::from_secs(1_000)), "1000000m");
        assert_eq!(grpc_timeout(Duration::from_secs(1_000_000)), "1000000S");
        assert_eq!(grpc_timeout(Duration::from_secs(u64::MAX)).len(), 9);
    }

    #[test]
    fn a_status_is_read_from_the_headers_and_http_statuses_map_as_grpc_says() {
        let mut h = HeaderMap::new();
        assert_eq!(grpc_status(&h), None);
        h.insert("grpc-status", HeaderValue::from_static("14"));
        assert_eq!(grpc_status(&h), Some(Code::Unavailable));
        h.insert("grpc-status", HeaderValue::from_static("x"));
        assert_eq!(grpc_status(&h), None);
        assert_eq!(from_http(http::StatusCode::SERVICE_UNAVAILABLE), Code::Unavailable);
        assert_eq!(from_http(http::StatusCode::NOT_FOUND), Code::Unimplemented);
        assert_eq!(from_http(http::StatusCode::IM_A_TEAPOT), Code::Unknown);
    }
}
