//! Where a workload's calls get their channel from, by policy.
//!
//! Calls go over the driver's own HTTP/2 connections
//! ([`crate::transport::conn`]), not tonic's buffered channels.
//! `shared` dials once (lazily, and again whenever the connection has closed); `per_call` dials
//! for every call and drops the channel after it, which closes the TCP
//! connection; `per_call_leak` dials for every call and parks the channel in
//! the run's leak bin, reproducing a client that never closes what it opens.
//! The bin lives as long as the run, so the harness's own count still
//! returns to baseline once the run is over. Retries that want a new channel
//! dial through [`ChannelSource::dial`].

use crate::scenario::ChannelPolicy;
use crate::transport::conn::{Conn, Connector, SharedConn};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Connections deliberately never closed during a run; dropped when the run ends.
pub(crate) type LeakBin = Arc<Mutex<Vec<Conn>>>;

#[derive(Clone)]
pub(crate) struct ChannelSource {
    connector: Connector,
    dial: crate::transport::Dial,
    policy: ChannelPolicy,
    shared: Option<Arc<SharedConn>>,
    leak_bin: LeakBin,
}

impl ChannelSource {
    /// Channels to the dial's address in its transport (plaintext or TLS), by `policy`, with HTTP/2
    /// keepalive pings (interval, timeout) when given, so a dead connection is noticed.
    pub(crate) fn new(
        dial: &crate::transport::Dial,
        policy: ChannelPolicy,
        connect_timeout: Duration,
        keepalive: Option<(Duration, Duration)>,
        leak_bin: LeakBin,
    ) -> anyhow::Result<Self> {
        let connector = Connector::new(dial, connect_timeout, keepalive)?;
        let shared = (policy == ChannelPolicy::Shared).then(|| Arc::new(SharedConn::new(connector.clone())));
        Ok(ChannelSource {
            connector,
            dial: dial.clone(),
            policy,
            shared,
            leak_bin,
        })
    }

    /// The run's transport: TLS and metadata.
    pub(crate) fn transport(&self) -> &crate::transport::Transport {
        &self.dial.transport
    }

    /// Adds the run's metadata to a request on one of these channels.
    pub(crate) fn decorate<T>(&self, req: &mut tonic::Request<T>) {
        self.dial.transport.decorate(req);
    }

    /// A channel for one call. A failed dial maps to UNAVAILABLE, or DEADLINE_EXCEEDED on timeout.
    pub(crate) async fn acquire(&self) -> Result<Conn, tonic::Code> {
        match &self.shared {
            Some(shared) => shared.get().await,
            None => self.dial().await,
        }
    }

    /// Dials a new channel whatever the policy.
    pub(crate) async fn dial(&self) -> Result<Conn, tonic::Code> {
        self.connector.connect().await
    }

    /// Keeps a channel open until the run ends, on purpose.
    pub(crate) fn leak(&self, channel: Conn) {
        crate::domain::lock(&self.leak_bin).push(channel);
    }

    /// Gives a channel back after its call: dropped, kept, or leaked, by policy.
    pub(crate) fn release(&self, channel: Conn) {
        if self.policy == ChannelPolicy::PerCallLeak {
            self.leak(channel);
        }
    }
}
