//! `fdsoak client-demo`: a reference health checker, so that a verdict on a
//! client can be seen failing and passing.
//!
//! - `good` keeps one channel for the whole run, with HTTP/2 keepalive so a
//!   dead connection is noticed and redialled.
//! - `retry-leak` keeps one channel, but when a check fails it starts over on
//!   a fresh channel and never closes the old one: the seed's bug, invisible
//!   until a fault makes a check fail.
//! - `per-check-leak` opens a channel for every check and never closes it.
//!
//! A channel that is never closed keeps reconnecting, as gRPC channels do: a
//! keeper checks every leaked channel every two seconds, so a reset does not
//! quietly free what the client forgot.
//!
//! Every channel dials through a connector of this module's own, so that
//! `--origin` names the function that opens a leaked socket (a channel's
//! default connector runs on tonic's task, with none of the demo's frames).

use crate::net::{Address, Stream};
use crate::proto::health::health_check_response::ServingStatus;
use crate::proto::health::health_client::HealthClient;
use crate::proto::health::HealthCheckRequest;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::MissedTickBehavior;
use tonic::transport::{Channel, Endpoint, Uri};

/// How the demo client treats its channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Good,
    RetryLeak,
    PerCheckLeak,
}

/// A validated `client-demo` command.
#[derive(Debug, Clone)]
pub(crate) struct DemoConfig {
    pub target: Address,
    pub mode: Mode,
    pub interval: Duration,
    pub deadline: Duration,
    /// Stop after this many checks; run until stopped when None.
    pub checks: Option<u64>,
}

/// What the demo did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DemoStats {
    pub ok: u64,
    pub failed: u64,
    pub leaked_channels: u64,
}

const KEEPER_EVERY: Duration = Duration::from_secs(2);

/// Runs checks every `interval` until `stop` resolves or `checks` are done.
pub(crate) async fn run(cfg: DemoConfig, stop: impl Future<Output = ()>) -> anyhow::Result<DemoStats> {
    let authority = cfg.target.tcp().map_or("localhost".to_string(), |a| a.to_string());
    let endpoint = Endpoint::from_shared(format!("http://{authority}"))?.connect_timeout(cfg.deadline);
    let good = endpoint
        .clone()
        .http2_keep_alive_interval(Duration::from_secs(1))
        .keep_alive_timeout(Duration::from_secs(1))
        .keep_alive_while_idle(true);
    let leaked: Arc<Mutex<Vec<Channel>>> = Arc::default();
    let keeper = tokio::spawn(keep_reconnecting(leaked.clone(), cfg.deadline));
    let _stop_keeper = AbortOnDrop(keeper);
    let mut current = match cfg.mode {
        Mode::Good => fresh_channel(&good, &cfg.target),
        _ => fresh_channel(&endpoint, &cfg.target),
    };
    let mut stats = DemoStats::default();
    let mut ticker = tokio::time::interval(cfg.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    tokio::pin!(stop);
    loop {
        if cfg.checks.is_some_and(|n| stats.ok + stats.failed >= n) {
            break;
        }
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut stop => break,
        }
        let channel = match cfg.mode {
            Mode::PerCheckLeak => {
                let ch = fresh_channel(&endpoint, &cfg.target);
                park(&leaked, ch.clone(), &mut stats);
                ch
            }
            _ => current.clone(),
        };
        let passed = check(channel, cfg.deadline).await;
        if passed {
            stats.ok += 1;
        } else {
            stats.failed += 1;
            if cfg.mode == Mode::RetryLeak {
                // The bug: start over on a fresh channel, and forget the old one without closing it.
                let fresh = fresh_channel(&endpoint, &cfg.target);
                park(&leaked, std::mem::replace(&mut current, fresh), &mut stats);
            }
        }
    }
    Ok(stats)
}

/// A channel that connects when first used, and again after each reset,
/// through the dial below: the socket of every connection it makes is opened here.
fn fresh_channel(endpoint: &Endpoint, target: &Address) -> Channel {
    let target = target.clone();
    endpoint.connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
        let target = target.clone();
        async move {
            let stream = match target {
                Address::Tcp(addr) => {
                    let stream = TcpStream::connect(addr).await?;
                    stream.set_nodelay(true)?;
                    Stream::Tcp(stream)
                }
                unix => unix.connect().await?,
            };
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    }))
}

fn park(leaked: &Mutex<Vec<Channel>>, ch: Channel, stats: &mut DemoStats) {
    {
        let mut l = crate::domain::lock(leaked);
        l.push(ch);
        stats.leaked_channels += 1;
    }
}

/// One Health/Check; true when it answered SERVING in time (NOT_SERVING is a failed check too).
async fn check(channel: Channel, deadline: Duration) -> bool {
    let mut req = tonic::Request::new(HealthCheckRequest { service: String::new() });
    req.set_timeout(deadline);
    let mut client = HealthClient::new(channel);
    matches!(
        tokio::time::timeout(deadline, client.check(req)).await,
        Ok(Ok(r)) if r.get_ref().status() == ServingStatus::Serving
    )
}

/// Keeps every leaked channel connected, as a gRPC channel nobody closed reconnects on its own.
async fn keep_reconnecting(leaked: Arc<Mutex<Vec<Channel>>>, deadline: Duration) {
    let mut ticker = tokio::time::interval(KEEPER_EVERY);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        ticker.tick().await;
        let channels: Vec<Channel> = crate::domain::lock(&leaked).clone();
        let mut checks = tokio::task::JoinSet::new();
        for ch in channels {
            checks.spawn(check(ch, deadline));
        }
        while checks.join_next().await.is_some() {}
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
