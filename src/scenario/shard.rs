//! One driver's share of a run spread over N drivers (`--shard I/N`, or
//! `--shards N` with Kubernetes' `JOB_COMPLETION_INDEX`): every workload's
//! rate, concurrency, streams and in-flight cap divided by N, so that N
//! drivers together apply the scenario as written and `fdsoak merge` adds
//! their reports back into one.
//!
//! Integer figures are split exactly: shard I gets `n / N`, plus one while I
//! is below `n % N`. A workload whose share is nothing (2 streams over 4
//! drivers) runs on the first shards only.

use super::{Load, Pacing, Scenario};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The environment variable an Indexed Job sets in each pod.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// Shard `index` of `count`, counting from 0 as `JOB_COMPLETION_INDEX` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `I/N`, with 0 ≤ I < N.
    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not I/N (such as 0/4)"))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| format!("{i:?} in {s:?} is not a shard index"))?;
        Shard::new(
            index,
            n.trim()
                .parse()
                .map_err(|_| format!("{n:?} in {s:?} is not a shard count"))?,
        )
    }
}

impl Shard {
    /// Checks 1 ≤ count ≤ 10,000 and index < count.
    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 || count > 10_000 {
            return Err(format!("the shard count must be 1 to 10000, got {count}"));
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is not below the shard count {count} (indices count from 0)"
            ));
        }
        Ok(Shard { index, count })
    }

    /// This shard's part of an integer total.
    pub fn share(self, n: u64) -> u64 {
        let (count, index) = (u64::from(self.count), u64::from(self.index));
        n / count + u64::from(index < n % count)
    }

    /// Divides every workload of `sc` for this shard.
    pub fn apply(self, sc: &mut Scenario) {
        let whole = self.count == 1;
        for phase in &mut sc.phases {
            phase.workloads.retain_mut(|w| whole || self.divide(&mut w.load));
        }
    }

    /// Divides one workload's load; false when this shard's part is nothing.
    fn divide(self, load: &mut Load) -> bool {
        let pacing = match load {
            Load::HealthCheck(h) => &mut h.calls.pacing,
            Load::Rpc(r) => &mut r.calls.pacing,
            Load::Watch(v) => {
                v.streams = self.share(v.streams);
                return v.streams > 0;
            }
        };
        match pacing {
            Pacing::Rate { rate, max_in_flight } => {
                *rate /= f64::from(self.count);
                *max_in_flight = max_in_flight.map(|m| m.div_ceil(u64::from(self.count)).max(1));
                true
            }
            Pacing::Concurrency(n) => {
                *n = self.share(*n);
                *n > 0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_i_of_n() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["4/4", "1/0", "x/2", "3", "-1/2", "1/20000"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn integer_shares_add_up_exactly() {
        for n in [0u64, 1, 2, 7, 8, 1000, 1003] {
            let total: u64 = (0..4).map(|i| Shard { index: i, count: 4 }.share(n)).sum();
            assert_eq!(total, n);
        }
        assert_eq!(Shard { index: 3, count: 4 }.share(2), 0);
    }
}
