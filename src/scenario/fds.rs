//! The `[target.fds]` table: where the target's descriptor counts come from
//! when fdsoak cannot read its `/proc` (a container, a pod, another host).
//!
//! Today that is a Prometheus endpoint serving the standard process metrics
//! (`process_open_fds`, `process_max_fds`). The URL may carry credentials
//! (`http://user:pass@host/metrics`, or a token in its query); [`MetricsUrl`]
//! keeps them out of every report and log, as [`super::Secret`] does for
//! metadata.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// The metric holding the open descriptor count, in every standard process collector.
pub const OPEN_FDS_METRIC: &str = "process_open_fds";
/// The metric holding the soft RLIMIT_NOFILE.
pub const MAX_FDS_METRIC: &str = "process_max_fds";

/// `[target.fds]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FdSourceSpec {
    /// `http://HOST:PORT/metrics`: scrape the target's descriptor count here on every sampler tick.
    #[schemars(with = "String")]
    pub prometheus: MetricsUrl,
    /// The metric with the open descriptor count.
    #[serde(default = "super::defaults::serde_default::open_metric")]
    pub open_metric: String,
    /// The metric with the soft descriptor limit (0 or absent: unknown).
    #[serde(default = "super::defaults::serde_default::max_metric")]
    pub max_metric: String,
    /// How long one scrape may take; the sampler interval or 2 s, whichever is shorter, by default.
    #[serde(default, with = "super::duration::option")]
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Duration>,
}

impl FdSourceSpec {
    /// A Prometheus source at `url` with the standard metric names.
    pub fn prometheus(url: &str) -> FdSourceSpec {
        FdSourceSpec {
            prometheus: MetricsUrl(url.to_string()),
            open_metric: OPEN_FDS_METRIC.into(),
            max_metric: MAX_FDS_METRIC.into(),
            timeout: None,
        }
    }

    /// The per-scrape timeout for a sampler ticking every `interval`.
    pub fn scrape_timeout(&self, interval: Duration) -> Duration {
        self.timeout.unwrap_or(super::defaults::SCRAPE_TIMEOUT.min(interval))
    }
}

/// A metrics URL whose credentials (user info, query) never reach an output.
#[derive(Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct MetricsUrl(String);

impl MetricsUrl {
    pub fn new(url: impl Into<String>) -> MetricsUrl {
        MetricsUrl(url.into())
    }

    /// The URL itself, for the one place that fetches it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Why this is not a URL fdsoak can scrape, if it is not.
    pub fn problem(&self) -> Option<String> {
        let uri: http::Uri = match self.0.parse() {
            Ok(u) => u,
            Err(e) => return Some(format!("{self} is not a URL: {e}")),
        };
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Some(format!(
                "{self}: https metrics endpoints are not supported yet; scrape over http (a sidecar or port-forward)"
            ))
            }
            _ => return Some(format!("{self} is not an http:// URL")),
        }
        uri.host().is_none().then(|| format!("{self} has no host"))
    }
}

impl fmt::Display for MetricsUrl {
    /// `http://host:port/path`, with `<redacted>` for any user info and query.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_str();
        let (scheme, rest) = s.split_once("://").unwrap_or(("", s));
        let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        let host = match authority.rsplit_once('@') {
            Some((_, host)) => format!("{}@{host}", super::secret::REDACTED),
            None => authority.to_string(),
        };
        let path = match path.split_once('?') {
            Some((p, _)) => format!("{p}?{}", super::secret::REDACTED),
            None => path.to_string(),
        };
        if scheme.is_empty() {
            write!(f, "{host}{path}")
        } else {
            write!(f, "{scheme}://{host}{path}")
        }
    }
}

impl fmt::Debug for MetricsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl Serialize for MetricsUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show() {
        let u = MetricsUrl::new("http://admin:hunter2@10.0.0.5:9100/metrics?token=abc");
        let shown = format!("{u} {u:?} {}", serde_json::to_string(&u).unwrap());
        assert!(
            !shown.contains("hunter2") && !shown.contains("abc") && !shown.contains("admin"),
            "{shown}"
        );
        assert!(shown.contains("10.0.0.5:9100/metrics"), "{shown}");
        assert_eq!(MetricsUrl::new("http://h:1/metrics").to_string(), "http://h:1/metrics");
    }

    #[test]
    fn only_http_urls_with_a_host() {
        assert_eq!(MetricsUrl::new("http://127.0.0.1:9/metrics").problem(), None);
        assert!(MetricsUrl::new("https://h/metrics")
            .problem()
            .unwrap()
            .contains("https"));
        assert!(MetricsUrl::new("h:9/metrics").problem().is_some());
        assert!(MetricsUrl::new("not a url").problem().is_some());
        assert!(MetricsUrl::new("ftp://h/x").problem().is_some());
    }
}
