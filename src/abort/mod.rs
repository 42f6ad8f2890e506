//! Stopping a run early when an armed gate (`[gates] abort`) is sure to
//! fail: deciding, tick by tick, from the same trackers the report is built
//! from ([`decision`]), and the sampler sink that asks after every tick and
//! cancels the phases when it is so ([`sink`]). Which gates are armed is a
//! key of the scenario's `[gates]` table (`scenario::Abort`).

pub(crate) mod decision;
pub(crate) mod sink;
