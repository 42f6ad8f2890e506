//! Where a workload's calls get their channel from, by policy.
//!
//! `shared` dials once (lazily, reconnecting as tonic does); `per_call` dials
//! for every call and drops the channel after it, which closes the TCP
//! connection; `per_call_leak` dials for every call and parks the channel in
//! the run's leak bin, reproducing a client that never closes what it opens.
//! The bin lives as long as the run, so the harness's own count still
//! returns to baseline once the run is over. Retries that want a new channel
//! dial through [`ChannelSource::dial`].

use crate::scenario::ChannelPolicy;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// Channels deliberately never closed during a run; dropped when the run ends.
pub type LeakBin = Arc<Mutex<Vec<Channel>>>;

#[derive(Clone)]
pub struct ChannelSource {
    endpoint: Endpoint,
    dial: crate::transport::Dial,
    policy: ChannelPolicy,
    shared: Option<Channel>,
    leak_bin: LeakBin,
}

impl ChannelSource {
    /// Channels to the dial's address in its transport (plaintext or TLS), by `policy`, with HTTP/2
    /// keepalive pings (interval, timeout) when given, so a dead connection is noticed.
    pub fn new(
        dial: &crate::transport::Dial,
        policy: ChannelPolicy,
        connect_timeout: Duration,
        keepalive: Option<(Duration, Duration)>,
        leak_bin: LeakBin,
    ) -> anyhow::Result<Self> {
        let mut endpoint = dial.endpoint()?.connect_timeout(connect_timeout).tcp_nodelay(true);
        if let Some((interval, timeout)) = keepalive {
            endpoint = endpoint
                .http2_keep_alive_interval(interval)
                .keep_alive_timeout(timeout)
                .keep_alive_while_idle(true);
        }
        let shared = (policy == ChannelPolicy::Shared).then(|| dial.lazy(&endpoint));
        Ok(ChannelSource {
            endpoint,
            dial: dial.clone(),
            policy,
            shared,
            leak_bin,
        })
    }

    /// Adds the run's metadata to a request on one of these channels.
    pub fn decorate<T>(&self, req: &mut tonic::Request<T>) {
        self.dial.transport.decorate(req);
    }

    /// A channel for one call. A failed dial maps to UNAVAILABLE, or DEADLINE_EXCEEDED on timeout.
    pub async fn acquire(&self) -> Result<Channel, tonic::Code> {
        if let Some(c) = &self.shared {
            return Ok(c.clone());
        }
        self.dial().await
    }

    /// Dials a new channel whatever the policy.
    pub async fn dial(&self) -> Result<Channel, tonic::Code> {
        self.dial.connect(&self.endpoint).await.map_err(|e| {
            let timed_out = std::error::Error::source(&e).is_some_and(|s| s.to_string().contains("timed out"));
            if timed_out {
                tonic::Code::DeadlineExceeded
            } else {
                tonic::Code::Unavailable
            }
        })
    }

    /// Keeps a channel open until the run ends, on purpose.
    pub fn leak(&self, channel: Channel) {
        self.leak_bin.lock().unwrap().push(channel);
    }

    /// Gives a channel back after its call: dropped, kept, or leaked, by policy.
    pub fn release(&self, channel: Channel) {
        if self.policy == ChannelPolicy::PerCallLeak {
            self.leak(channel);
        }
    }
}
