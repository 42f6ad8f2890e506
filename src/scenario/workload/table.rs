//! A workload as the file writes it: one flat table, `kind` beside every
//! kind's keys, so serde reads it key by key and each mistake keeps its line.
//! [`Workload`]'s conversion takes the keys its kind owns; a key still set
//! after that belongs to another kind. The conversion is also where a kind's
//! required key, and keys that exclude each other, are refused.

use super::{
    Body, Calls, ChannelPolicy, Hangup, HealthCheck, Load, Pacing, RetrySpec, Rpc, Watch, Workload, WorkloadKind,
};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// One `[[phases.workloads]]` table as a file writes it: every kind's keys side by side.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Workload")]
pub struct WorkloadTable {
    pub kind: WorkloadKind,
    /// Label in reports; defaults to `<kind>-<index>`.
    pub name: Option<String>,
    /// health_check: calls started per second.
    pub rate: Option<f64>,
    /// health_check, instead of rate: this many calls back to back (closed model, for saturation).
    pub concurrency: Option<u64>,
    /// health_check: calls allowed in flight; a scheduled call beyond it is skipped and counted.
    pub max_in_flight: Option<u64>,
    /// Per-call deadline (health_check) or connect deadline (watch).
    #[serde(default, with = "crate::scenario::duration::option")]
    #[schemars(with = "Option<String>")]
    pub deadline: Option<Duration>,
    /// The service name sent in the request; "" asks about the whole server.
    pub service: Option<String>,
    #[serde(default)]
    pub channel: ChannelPolicy,
    /// watch: streams held open at once.
    pub streams: Option<u64>,
    /// watch: close and re-open each stream this often.
    #[serde(default, with = "crate::scenario::duration::option")]
    #[schemars(with = "Option<String>")]
    pub reopen_every: Option<Duration>,
    /// HTTP/2 keepalive ping interval on the workload's channels (detects dead connections).
    #[serde(default, with = "crate::scenario::duration::option")]
    #[schemars(with = "Option<String>")]
    pub keepalive_interval: Option<Duration>,
    /// How long a keepalive ping may go unanswered before the connection is dropped.
    #[serde(default, with = "crate::scenario::duration::option")]
    #[schemars(with = "Option<String>")]
    pub keepalive_timeout: Option<Duration>,
    /// health_check, rpc: retry failed calls.
    pub retry: Option<RetrySpec>,
    /// rpc: the method, `package.Service/Method`.
    pub method: Option<String>,
    /// rpc: `.proto` files that define the method, compiled at run time (no protoc).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protos: Vec<PathBuf>,
    /// rpc: where imports are looked up; by default each proto's own directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub import_paths: Vec<PathBuf>,
    /// rpc: the request as JSON (an array is sent round-robin); `{{request_number}}` is replaced.
    pub data: Option<String>,
    /// rpc: a file holding the JSON request, instead of `data`.
    pub data_file: Option<PathBuf>,
    /// rpc, streams: fdsoak ends a stream after this long (counted OK).
    #[serde(default, with = "crate::scenario::duration::option")]
    #[schemars(with = "Option<String>")]
    pub stream_duration: Option<Duration>,
    /// rpc, server-streaming: fdsoak ends a stream after this many messages (counted OK).
    pub max_messages: Option<u64>,
    /// rpc, client-streaming or bidirectional: the pause between a stream's messages.
    #[serde(default, with = "crate::scenario::duration::option")]
    #[schemars(with = "Option<String>")]
    pub send_interval: Option<Duration>,
    /// rpc, client-streaming or bidirectional: how fdsoak ends a stream once its messages are sent.
    pub hangup: Option<Hangup>,
    /// This workload's own error-rate gate, replacing `[gates] max_error_rate` (e.g. 1.0 where failures are the point).
    pub max_error_rate: Option<f64>,
}

/// A workload key that its kind does not have, or lacks, or that another key excludes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("key `{key}`: {message}")]
pub struct WorkloadError {
    /// The key within the workload's table.
    pub key: String,
    pub message: String,
}

fn at(key: &str, message: impl Into<String>) -> WorkloadError {
    WorkloadError {
        key: key.to_string(),
        message: message.into(),
    }
}

impl TryFrom<WorkloadTable> for Workload {
    type Error = WorkloadError;

    fn try_from(mut t: WorkloadTable) -> Result<Workload, WorkloadError> {
        let (name, deadline, channel) = (t.name.take(), t.deadline.take(), t.channel);
        let (keepalive_interval, keepalive_timeout) = (t.keepalive_interval.take(), t.keepalive_timeout.take());
        let max_error_rate = t.max_error_rate.take();
        let load = match t.kind {
            WorkloadKind::HealthCheck => {
                let (calls, service) = (CallKeys::take(&mut t), t.service.take());
                t.nothing_left()?;
                Load::HealthCheck(HealthCheck {
                    calls: calls.checked(WorkloadKind::HealthCheck)?,
                    service,
                })
            }
            WorkloadKind::Watch => {
                let (streams, reopen_every, service) = (t.streams.take(), t.reopen_every.take(), t.service.take());
                t.nothing_left()?;
                let streams = streams.ok_or_else(|| at("streams", "watch needs a number of streams"))?;
                Load::Watch(Watch {
                    streams,
                    reopen_every,
                    service,
                })
            }
            WorkloadKind::Rpc => Load::Rpc(rpc(&mut t)?),
        };
        Ok(Workload {
            name,
            deadline,
            channel,
            keepalive_interval,
            keepalive_timeout,
            max_error_rate,
            load,
        })
    }
}

/// An rpc workload's keys: its method, its body, and how its streams end.
fn rpc(t: &mut WorkloadTable) -> Result<Rpc, WorkloadError> {
    let calls = CallKeys::take(t);
    let (method, data, data_file) = (t.method.take(), t.data.take(), t.data_file.take());
    let (protos, import_paths) = (std::mem::take(&mut t.protos), std::mem::take(&mut t.import_paths));
    let (stream_duration, max_messages) = (t.stream_duration.take(), t.max_messages.take());
    let (send_interval, hangup) = (t.send_interval.take(), t.hangup.take());
    t.nothing_left()?;
    let method = method.ok_or_else(|| at("method", "rpc needs a method, such as \"fdsoak.demo.v1.Chatbot/Ask\""))?;
    let body = match (data, data_file) {
        (Some(_), Some(_)) => return Err(at("data_file", "give data or data_file, not both")),
        (Some(d), None) => Some(Body::Data(d)),
        (None, Some(f)) => Some(Body::File(f)),
        (None, None) => None,
    };
    Ok(Rpc {
        calls: calls.checked(WorkloadKind::Rpc)?,
        method,
        protos,
        import_paths,
        body,
        stream_duration,
        max_messages,
        send_interval,
        hangup,
    })
}

/// The keys of a workload that makes calls (health_check, rpc), taken before they are checked.
struct CallKeys {
    rate: Option<f64>,
    concurrency: Option<u64>,
    max_in_flight: Option<u64>,
    retry: Option<RetrySpec>,
}

impl CallKeys {
    fn take(t: &mut WorkloadTable) -> CallKeys {
        CallKeys {
            rate: t.rate.take(),
            concurrency: t.concurrency.take(),
            max_in_flight: t.max_in_flight.take(),
            retry: t.retry.take(),
        }
    }

    /// The calls, paced by `rate` (with perhaps `max_in_flight`) or by `concurrency`, not both.
    fn checked(self, kind: WorkloadKind) -> Result<Calls, WorkloadError> {
        let pacing = match (self.rate, self.concurrency) {
            (Some(_), Some(_)) => {
                return Err(at(
                    "concurrency",
                    "give either rate (open model) or concurrency (closed model), not both",
                ))
            }
            (None, Some(_)) if self.max_in_flight.is_some() => {
                return Err(at("max_in_flight", "applies to rate (the open model) only"))
            }
            (None, Some(n)) => Pacing::Concurrency(n),
            (Some(rate), None) => Pacing::Rate {
                rate,
                max_in_flight: self.max_in_flight,
            },
            (None, None) => {
                return Err(at(
                    "rate",
                    format!("{} needs a rate (calls per second) or a concurrency", kind.as_str()),
                ))
            }
        };
        Ok(Calls {
            pacing,
            retry: self.retry,
        })
    }
}

impl WorkloadTable {
    /// Refuses the first key still set once the kind has taken its own: it belongs to another kind.
    /// (`kind` and `channel` apply to every kind and are never taken.)
    fn nothing_left(&self) -> Result<(), WorkloadError> {
        // Serialized, an unset key is left out: what remains is what the file set.
        let set = toml::Table::try_from(self).map_err(|e| at("kind", format!("cannot be checked: {e}")))?;
        match set.keys().find(|k| !["kind", "channel"].contains(&k.as_str())) {
            Some(key) => Err(at(key, format!("does not apply to kind {:?}", self.kind.as_str()))),
            None => Ok(()),
        }
    }

    /// Writes a workload's calls back as the keys they were read from.
    fn put_calls(&mut self, calls: Calls) {
        match calls.pacing {
            Pacing::Rate { rate, max_in_flight } => {
                self.rate = Some(rate);
                self.max_in_flight = max_in_flight;
            }
            Pacing::Concurrency(n) => self.concurrency = Some(n),
        }
        self.retry = calls.retry;
    }
}

impl From<Workload> for WorkloadTable {
    fn from(w: Workload) -> WorkloadTable {
        let mut t = WorkloadTable {
            kind: w.kind(),
            name: w.name,
            rate: None,
            concurrency: None,
            max_in_flight: None,
            deadline: w.deadline,
            service: None,
            channel: w.channel,
            streams: None,
            reopen_every: None,
            keepalive_interval: w.keepalive_interval,
            keepalive_timeout: w.keepalive_timeout,
            retry: None,
            method: None,
            protos: Vec::new(),
            import_paths: Vec::new(),
            data: None,
            data_file: None,
            stream_duration: None,
            max_messages: None,
            send_interval: None,
            hangup: None,
            max_error_rate: w.max_error_rate,
        };
        match w.load {
            Load::HealthCheck(h) => {
                t.put_calls(h.calls);
                t.service = h.service;
            }
            Load::Watch(v) => {
                t.streams = Some(v.streams);
                t.reopen_every = v.reopen_every;
                t.service = v.service;
            }
            Load::Rpc(r) => {
                t.put_calls(r.calls);
                t.method = Some(r.method);
                t.protos = r.protos;
                t.import_paths = r.import_paths;
                match r.body {
                    Some(Body::Data(d)) => t.data = Some(d),
                    Some(Body::File(f)) => t.data_file = Some(f),
                    None => {}
                }
                t.stream_duration = r.stream_duration;
                t.max_messages = r.max_messages;
                t.send_interval = r.send_interval;
                t.hangup = r.hangup;
            }
        }
        t
    }
}
