//! The built-in target's knobs: one struct, flattened into the scenario's
//! `[target]` table and into `fdsoak serve`'s flags, and handed from one to
//! the other as flags derived from the struct itself.

use serde::{Deserialize, Serialize};
use std::time::Duration;

fn is_false(b: &bool) -> bool {
    !*b
}

/// A switch; `null` (as reports before this struct wrote it) reads as off.
fn switch<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

/// The reflection services `fdsoak serve` registers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Reflection {
    /// grpc.reflection.v1 and v1alpha.
    #[default]
    Both,
    /// grpc.reflection.v1alpha only.
    V1alpha,
    /// None: clients need the .proto files.
    None,
}

impl Reflection {
    fn is_both(&self) -> bool {
        *self == Reflection::Both
    }
}

/// Leaks and behaviours of `fdsoak serve`, all off by default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema, clap::Args)]
pub struct Knobs {
    /// Every N-th Check opens a file and keeps it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leak_fd_every: Option<u64>,
    /// Every N-th Check health-checks a "backend" (this server) over a new channel that is never dropped.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leak_channel_every: Option<u64>,
    /// Every Check first health-checks this backend ("HOST:PORT", or "self" for this server) on a
    /// shared channel, retries a failed call once on a fresh channel that replaces it, and answers
    /// NOT_SERVING when the retry fails too.
    #[arg(long, value_name = "ADDR")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// With `backend`: the channel a retry replaces is kept open, never closed (the seed's bug).
    #[arg(long, requires = "backend")]
    #[serde(default, deserialize_with = "switch", skip_serializing_if = "is_false")]
    pub leak_backend_on_retry: bool,
    /// Keep a duplicate of every accepted socket, so peers that disconnect leave CLOSE_WAIT sockets.
    #[arg(long)]
    #[serde(default, deserialize_with = "switch", skip_serializing_if = "is_false")]
    pub hold_closed_conns: bool,
    /// Every N-th Chatbot/Ask dials a backend channel (this server) and never drops it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leak_ask_channel_every: Option<u64>,
    /// Every Chatbot/Converse stream's session file is kept open after the stream ends.
    #[arg(long)]
    #[serde(default, deserialize_with = "switch", skip_serializing_if = "is_false")]
    pub leak_converse_file: bool,
    /// Every Chatbot/Chat stream's session file is kept open after the stream ends.
    #[arg(long)]
    #[serde(default, deserialize_with = "switch", skip_serializing_if = "is_false")]
    pub leak_chat_file: bool,
    /// A Converse stream whose client went away keeps producing, and holding its session file, to its last turn.
    #[arg(long)]
    #[serde(default, deserialize_with = "switch", skip_serializing_if = "is_false")]
    pub converse_ignores_cancel: bool,
    /// Pause between Converse replies (e.g. "20ms"); all at once without it.
    #[arg(long, value_name = "DURATION", value_parser = super::duration::parse)]
    #[serde(default, with = "super::duration::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub converse_interval: Option<std::time::Duration>,
    /// Do not serve grpc.health.v1.Health, as many real servers do not (then use `ready = "connect"` or `"rpc"`).
    #[arg(long)]
    #[serde(default, deserialize_with = "switch", skip_serializing_if = "is_false")]
    pub no_health: bool,
    /// Which gRPC server reflection to serve: both versions, only the older v1alpha (as grpcio does), or none.
    #[arg(long, value_enum, default_value_t)]
    #[serde(default, skip_serializing_if = "Reflection::is_both")]
    pub reflection: Reflection,
    /// After the first accept error (such as EMFILE), stop accepting for good: a server that never recovers.
    #[arg(long)]
    #[serde(default, deserialize_with = "switch", skip_serializing_if = "is_false")]
    pub stop_accepting_on_error: bool,
    /// Stall: hold every Check answer from this long after start… (e.g. "5s")
    #[arg(long, value_name = "DURATION", value_parser = super::duration::parse, requires = "stall_for")]
    #[serde(default, with = "super::duration::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub stall_at: Option<Duration>,
    /// …for this long (e.g. "200ms").
    #[arg(long, value_name = "DURATION", value_parser = super::duration::parse, requires = "stall_at")]
    #[serde(default, with = "super::duration::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub stall_for: Option<Duration>,
    /// Send GOAWAY to each connection after this age (e.g. "10s"), then close it after the grace period.
    #[arg(long, value_name = "DURATION", value_parser = super::duration::parse)]
    #[serde(default, with = "super::duration::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub max_connection_age: Option<Duration>,
    /// How long a connection past its max age may finish its calls.
    #[arg(long, value_name = "DURATION", value_parser = super::duration::parse, requires = "max_connection_age")]
    #[serde(default, with = "super::duration::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub max_connection_age_grace: Option<Duration>,
    /// Ping each connection this often (HTTP/2 keepalive) and drop peers that stop answering.
    #[arg(long, value_name = "DURATION", value_parser = super::duration::parse)]
    #[serde(default, with = "super::duration::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub keepalive_interval: Option<Duration>,
    /// How long a keepalive ping may go unanswered (default 5s).
    #[arg(long, value_name = "DURATION", value_parser = super::duration::parse, requires = "keepalive_interval")]
    #[serde(default, with = "super::duration::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub keepalive_timeout: Option<Duration>,
    /// Answer UNAUTHENTICATED to every call without `authorization: Bearer TOKEN`, TOKEN read from
    /// this environment variable (named, so the token itself is never on a command line or in a report).
    #[arg(long, value_name = "NAME")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_token_env: Option<String>,
}

impl Knobs {
    /// The knobs that are set, as `(key, value)` with the value as the command line spells it
    /// (empty for a switch). Derived from the struct's own serialization: no list to keep in step.
    pub fn set(&self) -> Vec<(String, String)> {
        let Ok(serde_json::Value::Object(map)) = serde_json::to_value(self) else {
            return Vec::new();
        };
        map.into_iter()
            .map(|(k, v)| {
                let value = match v {
                    serde_json::Value::Bool(_) => String::new(),
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, value)
            })
            .collect()
    }

    /// The `fdsoak serve` flags that set these knobs.
    pub fn to_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        for (k, v) in self.set() {
            flags.push(format!("--{}", k.replace('_', "-")));
            if !v.is_empty() {
                flags.push(v);
            }
        }
        flags
    }

    /// The stall window, when both ends are set.
    pub fn stall(&self) -> Option<(Duration, Duration)> {
        self.stall_at.zip(self.stall_for)
    }

    /// Server keepalive: the ping interval and how long a ping may go unanswered.
    pub fn keepalive(&self) -> Option<(Duration, Duration)> {
        self.keepalive_interval
            .map(|i| (i, self.keepalive_timeout.unwrap_or(super::defaults::KEEPALIVE_TIMEOUT)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        knobs: Knobs,
    }

    #[test]
    fn flags_round_trip_through_serve() {
        let knobs = Knobs {
            leak_fd_every: Some(10),
            hold_closed_conns: true,
            stall_at: Some(Duration::from_secs(5)),
            stall_for: Some(Duration::from_millis(200)),
            keepalive_interval: Some(Duration::from_secs(1)),
            ..Knobs::default()
        };
        let flags = knobs.to_flags();
        assert!(flags.contains(&"--hold-closed-conns".to_string()), "{flags:?}");
        let parsed = Serve::try_parse_from(std::iter::once("serve".to_string()).chain(flags)).unwrap();
        assert_eq!(parsed.knobs, knobs);
        assert_eq!(Knobs::default().to_flags(), Vec::<String>::new());
        assert_eq!(
            knobs.keepalive(),
            Some((Duration::from_secs(1), crate::scenario::defaults::KEEPALIVE_TIMEOUT))
        );
    }
}
