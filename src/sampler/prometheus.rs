//! Reads a process's descriptor count from a Prometheus endpoint instead of
//! `/proc`: the standard process metrics (`process_open_fds`,
//! `process_max_fds`) that client_golang, Python's prometheus_client, the
//! Rust `prometheus` crate, etcd and many others export by default.
//!
//! One [`Scraper`] per source, holding one kept-alive HTTP/1 connection, so
//! scraping does not churn the target's sockets. Each scrape has a deadline
//! and a page-size bound. A failed scrape is an error the sampler turns into
//! a gap, never into a zero. The page is parsed with `prometheus-parse`.

use crate::domain::Reading;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use std::time::Duration;

/// The largest metrics page read; a bigger one is an error, not an allocation.
pub const MAX_PAGE: usize = 16 << 20;
/// Metrics read besides the count and the limit, when the page has them.
const RSS_METRIC: &str = "process_resident_memory_bytes";
const THREADS_METRIC: &str = "process_threads";

/// Why one scrape gave no reading.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScrapeError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Http(String),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("the page is not text or larger than {} MiB", MAX_PAGE >> 20)]
    Body,
    #[error("no {0} on the page (set [target.fds] open_metric if the exporter names it otherwise)")]
    Missing(String),
    #[error("{0} is {1}, not a descriptor count")]
    NotACount(String, f64),
}

/// Scrapes one endpoint.
pub struct Scraper {
    uri: http::Uri,
    /// `Authorization: Basic …` from the URL's user info, if any.
    auth: Option<http::HeaderValue>,
    open: String,
    max: String,
    timeout: Duration,
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl std::fmt::Debug for Scraper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scraper")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

/// The metrics a scraper reads: the open-descriptor count, and the limit.
#[derive(Debug, Clone, Copy)]
pub struct MetricNames<'a> {
    pub open: &'a str,
    pub max: &'a str,
}

impl Scraper {
    /// A scraper of `url` reading the metrics `names`, each scrape within
    /// `timeout`. The URL was validated with the scenario.
    pub fn new(url: &str, names: MetricNames<'_>, timeout: Duration) -> anyhow::Result<Scraper> {
        let MetricNames { open, max } = names;
        let full: http::Uri = url.parse()?;
        let authority = full.authority().ok_or_else(|| anyhow::anyhow!("no host"))?;
        // User info goes into a header, never into the request line or Host.
        let (auth, host) = match authority.as_str().rsplit_once('@') {
            Some((user, host)) => {
                use base64::Engine;
                let token = base64::engine::general_purpose::STANDARD.encode(user);
                let mut v = http::HeaderValue::try_from(format!("Basic {token}"))?;
                v.set_sensitive(true);
                (Some(v), host.to_string())
            }
            None => (None, authority.to_string()),
        };
        let uri = http::Uri::builder()
            .scheme("http")
            .authority(host)
            .path_and_query(full.path_and_query().map_or("/", |p| p.as_str()))
            .build()?;
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(1)
            .pool_idle_timeout(Duration::from_secs(90))
            .build_http();
        Ok(Scraper {
            uri,
            auth,
            open: open.to_string(),
            max: max.to_string(),
            timeout,
            client,
        })
    }

    /// One scrape: the count, the limit and what else the page has.
    pub async fn read(&self) -> Result<Reading, ScrapeError> {
        let page = tokio::time::timeout(self.timeout, self.fetch())
            .await
            .map_err(|_| ScrapeError::Timeout(self.timeout))??;
        parse(&page, &self.open, &self.max)
    }

    async fn fetch(&self) -> Result<String, ScrapeError> {
        let mut req = http::Request::get(self.uri.clone()).header(http::header::ACCEPT, "text/plain;version=0.0.4");
        if let Some(a) = &self.auth {
            req = req.header(http::header::AUTHORIZATION, a.clone());
        }
        let req = req.body(Empty::new()).map_err(|e| ScrapeError::Http(e.to_string()))?;
        let resp = self.client.request(req).await.map_err(|e| {
            // The connection error itself is the useful part ("connection refused").
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg = format!("{msg}: {s}");
                src = s.source();
            }
            ScrapeError::Http(msg)
        })?;
        if !resp.status().is_success() {
            return Err(ScrapeError::Status(resp.status().as_u16()));
        }
        let body = Limited::new(resp.into_body(), MAX_PAGE)
            .collect()
            .await
            .map_err(|_| ScrapeError::Body)?
            .to_bytes();
        String::from_utf8(body.to_vec()).map_err(|_| ScrapeError::Body)
    }

    /// Scrapes until one succeeds or `within` passes; the last error otherwise.
    pub async fn first(&self, within: Duration) -> Result<Reading, ScrapeError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let err = match self.read().await {
                Ok(r) => return Ok(r),
                // The endpoint answers, but without the metric: waiting will not add it.
                Err(e @ ScrapeError::Missing(_)) => return Err(e),
                Err(e) => e,
            };
            if tokio::time::Instant::now() + Duration::from_millis(100) >= deadline {
                return Err(err);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The metric a text-format line is about: a sample's name, or the name a `# HELP`/`# TYPE` line describes.
fn metric_of(line: &str) -> &str {
    let line = line.trim_start();
    let rest = match line.strip_prefix('#') {
        Some(c) => c
            .trim_start()
            .split_once(char::is_whitespace)
            .map_or("", |(_, r)| r.trim_start()),
        None => line,
    };
    rest.split(|c: char| c == '{' || c.is_whitespace()).next().unwrap_or("")
}

/// A reading from one metrics page: `open` is the descriptor count, `max`
/// the soft limit. Descriptor kinds and TCP states stay zero: the source does not give them.
///
/// Only the lines about the metrics read are handed to the parser: a
/// service's page is mostly histograms fdsoak does not read, and parsing
/// them all costs several times more (see the benchmark).
pub fn parse(page: &str, open: &str, max: &str) -> Result<Reading, ScrapeError> {
    let wanted = [open, max, RSS_METRIC, THREADS_METRIC];
    let lines = page
        .lines()
        .filter(|l| wanted.contains(&metric_of(l)))
        .map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).map_err(|e| ScrapeError::Http(e.to_string()))?;
    let value = |name: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .and_then(|s| match s.value {
                prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v)
                | prometheus_parse::Value::Counter(v) => Some(v),
                _ => None,
            })
    };
    let count = |name: &str, v: f64| {
        if (0.0..1e12).contains(&v) {
            Ok(v as u64)
        } else {
            Err(ScrapeError::NotACount(name.to_string(), v))
        }
    };
    let n = value(open).ok_or_else(|| ScrapeError::Missing(open.to_string()))?;
    let mut r = Reading::default();
    r.fds.total = count(open, n)?;
    // 0 is how the collectors say "unlimited".
    r.nofile_soft = value(max).and_then(|v| count(max, v).ok()).filter(|v| *v > 0);
    r.rss_kb = value(RSS_METRIC).and_then(|v| count(RSS_METRIC, v).ok()).unwrap_or(0) / 1024;
    r.threads = value(THREADS_METRIC)
        .and_then(|v| count(THREADS_METRIC, v).ok())
        .unwrap_or(0);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds 37\n# HELP process_max_fds Maximum number of open file descriptors.\n# TYPE process_max_fds gauge\nprocess_max_fds 1024\nprocess_resident_memory_bytes 1.048576e+07\ngo_goroutines 12\n";

    #[test]
    fn reads_count_limit_and_memory() {
        let r = parse(PAGE, "process_open_fds", "process_max_fds").unwrap();
        assert_eq!((r.fds.total, r.nofile_soft, r.rss_kb), (37, Some(1024), 10240));
        assert_eq!(r.fds.socket + r.tcp.close_wait(), 0);
    }

    #[test]
    fn garbage_and_missing_metrics_are_errors_not_zeros() {
        assert!(matches!(
            parse("<html>oops</html>", "process_open_fds", "m"),
            Err(ScrapeError::Missing(_))
        ));
        assert!(matches!(
            parse("", "process_open_fds", "m"),
            Err(ScrapeError::Missing(_))
        ));
        assert!(matches!(
            parse("process_open_fds NaN\n", "process_open_fds", "m"),
            Err(ScrapeError::NotACount(..))
        ));
        assert!(matches!(
            parse("process_open_fds -3\n", "process_open_fds", "m"),
            Err(ScrapeError::NotACount(..))
        ));
        // A name that only starts like the metric is another metric.
        assert!(matches!(
            parse("process_open_fds_total 5\n", "process_open_fds", "m"),
            Err(ScrapeError::Missing(_))
        ));
        let r = parse("process_open_fds{pid=\"1\"} 9\n", "process_open_fds", "m").unwrap();
        assert_eq!(r.fds.total, 9);
        // Renamed metrics are read where the spec says.
        let r = parse("fds_open 5\nfds_max 0\n", "fds_open", "fds_max").unwrap();
        assert_eq!((r.fds.total, r.nofile_soft), (5, None));
    }
}
