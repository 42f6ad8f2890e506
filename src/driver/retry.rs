//! Retries in the shape of gRFC A6: up to `max_attempts` attempts, on the
//! listed status codes, after exponential backoff with jitter, on the same
//! channel or a new one (closed or, to reproduce the seed's bug, kept).
//!
//! The caller measures latency around the whole exchange, so it covers
//! every attempt and every backoff.

use super::channel::ChannelSource;
use crate::domain::CODE_NAMES;
use crate::metrics::WorkloadStats;
use crate::scenario::{OnRetry, RetrySpec};
use crate::transport::conn::Conn as Channel;
use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// A validated retry policy.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub multiplier: f64,
    pub jitter: f64,
    retryable: [bool; 17],
    pub on_retry: OnRetry,
}

impl Policy {
    pub(crate) fn from_spec(s: &RetrySpec) -> Policy {
        let mut retryable = [false; 17];
        for name in &s.retryable {
            if let Some(i) = CODE_NAMES.iter().position(|c| c == name) {
                retryable[i] = true;
            }
        }
        Policy {
            max_attempts: s.max_attempts,
            initial_backoff: s.initial_backoff,
            max_backoff: s.max_backoff,
            multiplier: s.backoff_multiplier,
            jitter: s.jitter,
            retryable,
            on_retry: s.on_retry,
        }
    }

    pub(crate) fn retries(&self, code: tonic::Code) -> bool {
        self.retryable.get(code as usize).copied().unwrap_or(false)
    }

    /// The pause before retry number `n` (1 for the first retry).
    pub(crate) fn backoff(&self, n: u32, draw: f64) -> Duration {
        let base = self.initial_backoff.as_secs_f64() * self.multiplier.powi(n.saturating_sub(1) as i32);
        let capped = base.min(self.max_backoff.as_secs_f64());
        Duration::from_secs_f64((capped * (1.0 + self.jitter * (2.0 * draw - 1.0))).max(0.0))
    }
}

/// Runs `attempt` on channels from `source`, retrying by `policy` (None: one attempt).
pub(crate) async fn call<F, Fut>(
    source: &ChannelSource,
    policy: Option<&Policy>,
    stats: &WorkloadStats,
    attempt: F,
) -> tonic::Code
where
    F: Fn(Channel) -> Fut,
    Fut: Future<Output = tonic::Code>,
{
    let mut first = Some(source.acquire().await);
    let mut n = 1;
    loop {
        stats.attempts.fetch_add(1, Relaxed);
        // The first attempt uses the workload's channel; a retry may dial its own.
        let (channel, owned_by_retry) = match first.take() {
            Some(c) => (c, false),
            None => match policy.map_or(OnRetry::SameChannel, |p| p.on_retry) {
                OnRetry::SameChannel => (source.acquire().await, false),
                OnRetry::NewChannel | OnRetry::NewChannelLeak => (source.dial().await, true),
            },
        };
        let code = match channel {
            Ok(ch) => {
                let code = attempt(ch.clone()).await;
                match (owned_by_retry, policy.map(|p| p.on_retry)) {
                    (false, _) => source.release(ch),
                    // new_channel_leak: the checker dials a channel per retry and never closes it.
                    (true, Some(OnRetry::NewChannelLeak)) => source.leak(ch),
                    (true, _) => drop(ch),
                }
                code
            }
            Err(code) => code,
        };
        if code == tonic::Code::Ok {
            if n > 1 {
                stats.retry_successes.fetch_add(1, Relaxed);
            }
            return code;
        }
        let Some(p) = policy.filter(|p| n < p.max_attempts && p.retries(code)) else {
            if n > 1 {
                stats.give_ups.fetch_add(1, Relaxed);
            }
            return code;
        };
        tokio::time::sleep(p.backoff(n, crate::fault::random())).await;
        stats.retries.fetch_add(1, Relaxed);
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::from_spec(&RetrySpec {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            backoff_multiplier: 2.0,
            jitter: 0.2,
            retryable: vec!["UNAVAILABLE".into(), "DEADLINE_EXCEEDED".into()],
            on_retry: OnRetry::NewChannel,
        })
    }

    #[test]
    fn backoff_grows_caps_and_jitters_within_bounds() {
        let p = policy();
        let ms = |n, draw| p.backoff(n, draw).as_millis();
        assert_eq!(
            [ms(1, 0.5), ms(2, 0.5), ms(3, 0.5), ms(4, 0.5), ms(5, 0.5)],
            [100, 200, 400, 500, 500]
        );
        assert_eq!(ms(1, 0.0), 80);
        assert_eq!(ms(1, 1.0), 120);
    }

    #[test]
    fn only_listed_codes_are_retried() {
        let p = policy();
        assert!(p.retries(tonic::Code::Unavailable));
        assert!(p.retries(tonic::Code::DeadlineExceeded));
        assert!(!p.retries(tonic::Code::NotFound));
        assert!(!p.retries(tonic::Code::Ok));
    }
}
