//! Durations in scenario files: humantime text (`"250ms"`, `"1h 30m"`),
//! bounded by [`MAX_DURATION`] so that no value a user can write overflows a
//! clock. A value beyond the bound is a serde error, so it is reported at
//! its file, line and key like any other.

use serde::{Deserialize, Deserializer, Serializer};
use std::time::Duration;

/// The longest duration a scenario or a flag may give, in days: a year.
pub(crate) const MAX_DAYS: u64 = 365;
/// The same as a duration.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(MAX_DAYS * 86_400);

/// Checks a duration against [`MAX_DURATION`].
pub(crate) fn check(d: Duration) -> Result<Duration, String> {
    if d > MAX_DURATION {
        Err(format!(
            "{} is longer than the longest allowed, {MAX_DAYS} days",
            humantime::format_duration(d)
        ))
    } else {
        Ok(d)
    }
}

/// Parses a command-line duration with the same bound.
pub(crate) fn parse(s: &str) -> Result<Duration, String> {
    check(humantime::parse_duration(s).map_err(|e| e.to_string())?)
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let v: Duration = humantime_serde::deserialize(d)?;
    check(v).map_err(serde::de::Error::custom)
}

pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    humantime_serde::serialize(d, s)
}

/// The same for optional durations.
pub(crate) mod option {
    use super::*;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let v: Option<humantime_serde::Serde<Duration>> = Option::deserialize(d)?;
        v.map(|v| check(v.into_inner()).map_err(serde::de::Error::custom))
            .transpose()
    }

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        humantime_serde::serialize(d, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_holds_for_flags() {
        assert_eq!(parse("365d"), Ok(MAX_DURATION));
        assert!(parse("366d").unwrap_err().contains("longest allowed"));
        assert!(parse("300000000000y").is_err());
        assert!(parse("soon").is_err());
    }
}
