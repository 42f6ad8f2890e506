//! Readiness: when a target is ready for the load. Whatever the mode, it is
//! ready once a grpc.health.v1 Check succeeds (`ready = "health"`), or once
//! it accepts an HTTP/2 connection (`"connect"`, and `"rpc"` before its
//! first call). A server without the health service, a port that speaks
//! another protocol, or a certificate fdsoak does not trust fails at once,
//! saying why, rather than waiting out the timeout.

use super::{exited_early, TargetError};
use crate::proto::health::health_client::HealthClient;
use crate::proto::health::HealthCheckRequest;
use crate::scenario::ReadyCheck;
use crate::transport::conn::Conn;
use crate::transport::Dial;
use std::time::Duration;
use tokio::process::Child;
use tokio::time::Instant;

/// How to tell the target is ready, and for how long to try.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ready {
    pub check: ReadyCheck,
    pub timeout: Duration,
}

/// Tries the readiness check until it succeeds, the deadline passes, or the child exits.
/// A server without the health service, or a port that speaks another protocol, fails at once.
pub(super) async fn wait(dial: &Dial, ready: Ready, mut child: Option<&mut Child>) -> Result<(), TargetError> {
    let Ready { check, timeout } = ready;
    let (addr, transport) = (dial.addr.clone(), &*dial.transport);
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no attempt made");
    // Whether `last` is a failure of the target's, not only an attempt that ran out of time.
    let mut said_more = false;
    let name = if check == ReadyCheck::Health {
        "answer a health check"
    } else {
        "accept an HTTP/2 connection"
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(TargetError::Unreachable {
                addr: addr.clone(),
                check: name,
                timeout,
                last,
            });
        }
        let attempt = left.min(Duration::from_secs(2));
        let result = match check {
            ReadyCheck::Health => health_check_once(dial, attempt).await,
            ReadyCheck::Connect | ReadyCheck::Rpc => connect_once(dial, attempt).await.map(drop),
        };
        match result {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::debug!("readiness attempt on {addr}: {e:#}");
                if e.downcast_ref::<tonic::Status>()
                    .is_some_and(|s| s.code() == tonic::Code::Unimplemented)
                {
                    return Err(TargetError::NoHealthService { addr });
                }
                // Something answered, but not in HTTP/2: say what it speaks rather than wait.
                if let Some(what) = super::protocol::sniff(&addr, attempt, transport.is_tls()).await {
                    return Err(TargetError::WrongProtocol { addr, what });
                }
                let code = e.downcast_ref::<tonic::Status>().map(|s| s.code());
                // A call's deadline, or a dial's ("no connection within …"), ran out.
                let timed_out = code == Some(tonic::Code::DeadlineExceeded)
                    || e.downcast_ref::<crate::transport::conn::DialError>()
                        .is_some_and(|d| d.code == tonic::Code::DeadlineExceeded);
                // An attempt cut short by the deadline says less than the failure before it.
                let cut_short = timed_out && attempt < Duration::from_secs(2);
                if !(cut_short && said_more) {
                    let words = format!("{e:#}");
                    // A certificate fdsoak does not trust will not change by waiting.
                    if let Some(what) = super::protocol::tls_refusal(&words, transport) {
                        return Err(TargetError::WrongProtocol { addr, what });
                    }
                    last = transport.explain(&words, code);
                    said_more = !timed_out;
                }
            }
        }
        if let Some(c) = child.as_deref_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                return Err(exited_early(Some(status)));
            }
        }
        tokio::time::sleep(Duration::from_millis(50).min(left)).await;
    }
}

/// A fresh HTTP/2 connection to the dial's address, made as the load makes them
/// (the socket, TLS if any, and the HTTP/2 preface).
pub(crate) async fn connect_once(dial: &Dial, timeout: Duration) -> anyhow::Result<Conn> {
    Ok(dial.connect(timeout).await?)
}

/// One Health/Check over a fresh connection that is closed afterwards.
pub(crate) async fn health_check_once(dial: &Dial, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let conn = connect_once(dial, timeout).await?;
    let left = deadline.saturating_duration_since(Instant::now());
    let mut req = tonic::Request::new(HealthCheckRequest { service: String::new() });
    req.set_timeout(left);
    dial.transport.decorate(&mut req);
    match tokio::time::timeout(left, HealthClient::new(conn).check(req)).await {
        Ok(answer) => answer.map(drop).map_err(anyhow::Error::new),
        Err(_) => Err(anyhow::Error::new(tonic::Status::deadline_exceeded(format!(
            "no answer within {timeout:?}"
        )))),
    }
}
