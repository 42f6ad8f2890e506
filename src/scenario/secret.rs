//! A value that must never reach a report or a log: metadata values (tokens)
//! and the path of a private key. It reads from a scenario like a string,
//! and writes, prints and debugs as `<redacted>`, so a resolved scenario can
//! be stored in `summary.json` as it is.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What every secret is written as.
pub use crate::domain::REDACTED;

/// A string kept out of every output.
#[derive(Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The value itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_reads_as_itself_and_writes_as_redacted() {
        let s: Secret = serde_json::from_str("\"Bearer abc\"").unwrap();
        assert_eq!(s.expose(), "Bearer abc");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"<redacted>\"");
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
    }
}
