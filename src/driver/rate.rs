//! The open-model timetable: call `i` is due at `start + i / rate`, whatever
//! earlier calls are doing.
//!
//! A closed loop waits for a response before sending the next request, so a
//! stalled server quietly slows the driver and the stall never shows in the
//! latency figures (coordinated omission). Here each call is handed its
//! scheduled instant and latency is measured from it, so a stall shows up as
//! latency. When `max_in_flight` calls are already running, a due call is
//! skipped and counted instead of queued.

use super::clock::Timer;
use crate::metrics::WorkloadStats;
use crate::transport::stages::{self, Stage};
use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How calls are paced: the one choice every call-per-request workload (health_check, rpc) makes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pace {
    /// Open model: `rate` calls per second on a timetable, skipping beyond
    /// `max_in_flight`; `precise`: due times kept to the microsecond (see [`clock`]).
    Open {
        rate: f64,
        max_in_flight: u64,
        precise: bool,
    },
    /// Closed model: `concurrency` calls back to back, for saturation.
    Closed { concurrency: u64 },
}

impl Pace {
    /// The pace a workload's keys ask for.
    pub(crate) fn of(p: &crate::scenario::Pacing) -> Pace {
        use crate::scenario::Pacing;
        match *p {
            Pacing::Concurrency(concurrency) => Pace::Closed { concurrency },
            Pacing::Rate { rate, max_in_flight } => Pace::Open {
                rate,
                max_in_flight: crate::scenario::defaults::max_in_flight(max_in_flight),
                precise: true,
            },
        }
    }
}

/// Runs `call(scheduled_at)` at `pace` until `until` or `stop`.
pub(crate) async fn run<F, Fut>(
    pace: Pace,
    until: Instant,
    stop: &CancellationToken,
    stats: &Arc<WorkloadStats>,
    call: F,
) where
    F: Fn(Instant) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    match pace {
        Pace::Open {
            rate,
            max_in_flight,
            precise,
        } => {
            let timer = if precise {
                Timer::precise(period_of(rate))
            } else {
                Timer::Tokio
            };
            let timetable = Timetable {
                rate,
                max_in_flight,
                until,
                timer,
            };
            open_model(timetable, stop, stats, call).await
        }
        Pace::Closed { concurrency } => closed_model(concurrency, until, stop, stats, call).await,
    }
}

/// An open model's timetable: `rate` calls per second until `until`, at most
/// `max_in_flight` at once, waited for with `timer`.
pub(crate) struct Timetable {
    pub rate: f64,
    pub max_in_flight: u64,
    pub until: Instant,
    pub timer: Timer,
}

#[cfg(test)]
impl Timetable {
    /// tokio's timer, which follows a paused clock: for tests where time is logic.
    pub(crate) fn on_tokio(rate: f64, max_in_flight: u64, until: Instant) -> Timetable {
        Timetable {
            rate,
            max_in_flight,
            until,
            timer: Timer::Tokio,
        }
    }
}

/// The time between calls at `rate`. A rate so low that its period overflows waits
/// as long as the longest duration, longer than any phase.
fn period_of(rate: f64) -> Duration {
    let max = crate::scenario::duration::MAX_DURATION;
    Duration::try_from_secs_f64(1.0 / rate).map_or(max, |p| p.min(max))
}

/// Runs `call(scheduled_at)` on the timetable until `until` or `stop`, then
/// waits for the calls still in flight (each is bounded by its own deadline).
pub(crate) async fn open_model<F, Fut>(
    timetable: Timetable,
    stop: &CancellationToken,
    stats: &Arc<WorkloadStats>,
    mut call: F,
) where
    F: FnMut(Instant) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Timetable {
        rate,
        max_in_flight,
        until,
        mut timer,
    } = timetable;
    let start = Instant::now();
    let period = period_of(rate);
    let mut tasks = JoinSet::new();
    for i in 0u64.. {
        let due = start + period.mul_f64(i as f64);
        if due >= until {
            break;
        }
        tokio::select! {
            _ = timer.sleep_until(due) => {}
            _ = stop.cancelled() => break,
        }
        stages::record(Stage::Timer, due);
        // Reap finished calls so the set only ever holds the ones in flight.
        while tasks.try_join_next().is_some() {}
        stats.scheduled.fetch_add(1, Relaxed);
        if tasks.len() as u64 >= max_in_flight {
            stats.skipped.fetch_add(1, Relaxed);
            continue;
        }
        let guard = InFlight::enter(stats.clone());
        let fut = call(due);
        let mut task = Box::pin(async move {
            stages::record(Stage::FirstPoll, due);
            guard.0.started_late(Instant::now().saturating_duration_since(due));
            fut.await;
            drop(guard);
        });
        // The call's first step (up to its request handed to HTTP/2) runs here, at its
        // due time, not after the timetable has armed the timer for the next call. A
        // call still running goes on as a task of its own, which polls it again.
        if std::future::poll_fn(|cx| Poll::Ready(task.as_mut().poll(cx).is_pending())).await {
            tasks.spawn(task);
        }
    }
    tokio::select! {
        _ = async { while tasks.join_next().await.is_some() {} } => {}
        _ = stop.cancelled() => tasks.abort_all(),
    }
    while tasks.join_next().await.is_some() {}
    stages::write();
}

/// The closed model, for saturation: `concurrency` workers each start a call
/// as soon as their previous one finishes, until `until` or `stop`. There is
/// no timetable, so latency is measured from each call's actual start; use
/// the open model to see stalls.
pub(crate) async fn closed_model<F, Fut>(
    concurrency: u64,
    until: Instant,
    stop: &CancellationToken,
    stats: &Arc<WorkloadStats>,
    call: F,
) where
    F: Fn(Instant) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let call = Arc::new(call);
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        let (call, stats, stop) = (call.clone(), stats.clone(), stop.clone());
        workers.spawn(async move {
            while Instant::now() < until {
                stats.scheduled.fetch_add(1, Relaxed);
                let guard = InFlight::enter(stats.clone());
                tokio::select! {
                    _ = call(Instant::now()) => {}
                    _ = stop.cancelled() => return,
                }
                drop(guard);
            }
        });
    }
    while workers.join_next().await.is_some() {}
}

/// Counts a call as started and in flight until dropped (even if aborted).
struct InFlight(Arc<WorkloadStats>);

impl InFlight {
    fn enter(stats: Arc<WorkloadStats>) -> Self {
        stats.started.fetch_add(1, Relaxed);
        stats.in_flight.fetch_add(1, Relaxed);
        InFlight(stats)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> Arc<WorkloadStats> {
        Arc::new(WorkloadStats::new("p", 0, "w", "health_check", "shared"))
    }

    #[tokio::test(start_paused = true)]
    async fn issues_calls_on_schedule() {
        let s = stats();
        let start = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        open_model(
            Timetable::on_tokio(10.0, 100, start + Duration::from_secs(2)),
            &stop,
            &s,
            |due| {
                let tx = tx.clone();
                async move {
                    tx.send((due, Instant::now())).unwrap();
                }
            },
        )
        .await;
        drop(tx);
        let mut n = 0;
        while let Some((due, ran)) = rx.recv().await {
            assert_eq!(due, start + Duration::from_millis(100 * n));
            assert_eq!(ran, due, "with paused time a call starts exactly when due");
            n += 1;
        }
        assert_eq!(n, 20);
        let c = s.counts();
        assert_eq!((c.scheduled, c.started, c.skipped, c.in_flight), (20, 20, 0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_becomes_latency_and_skips_not_a_slower_schedule() {
        let s = stats();
        let start = Instant::now();
        let stop = CancellationToken::new();
        // Every call stalls for 1 s at 10 calls/s with at most 5 in flight:
        // the schedule keeps its pace, half of the due calls are skipped.
        let s2 = s.clone();
        open_model(
            Timetable::on_tokio(10.0, 5, start + Duration::from_secs(3)),
            &stop,
            &s,
            move |due| {
                let s = s2.clone();
                async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    s.finish(tonic::Code::Ok, due.elapsed());
                }
            },
        )
        .await;
        let c = s.counts();
        assert_eq!(c.scheduled, 30);
        assert_eq!(c.started + c.skipped, 30);
        assert_eq!(c.started, 15, "5 in flight per second of stall, for 3 s");
        let h = s.histogram();
        assert!(h.value_at_quantile(0.5) >= 1_000_000, "latency counts the stall");
        assert!(Instant::now() >= start + Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn the_closed_model_keeps_n_calls_in_flight() {
        let s = stats();
        let stop = CancellationToken::new();
        let start = Instant::now();
        let s2 = s.clone();
        // 4 workers, 100 ms calls, 1 s: 10 calls each, never more than 4 at once.
        closed_model(4, start + Duration::from_secs(1), &stop, &s, move |_| {
            let s = s2.clone();
            async move {
                assert!(s.in_flight.load(Relaxed) <= 4);
                tokio::time::sleep(Duration::from_millis(100)).await;
                s.finish(tonic::Code::Ok, Duration::from_millis(100));
            }
        })
        .await;
        let c = s.counts();
        assert_eq!((c.started, c.ok, c.skipped, c.in_flight), (40, 40, 0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn stop_aborts_calls_in_flight() {
        let s = stats();
        let stop = CancellationToken::new();
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(550)).await;
            stopper.cancel();
        });
        let start = Instant::now();
        open_model(
            Timetable::on_tokio(10.0, 100, start + Duration::from_secs(60)),
            &stop,
            &s,
            |_| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            },
        )
        .await;
        assert!(Instant::now() < start + Duration::from_secs(1));
        assert_eq!(s.counts().in_flight, 0);
        assert_eq!(s.counts().started, 6);
    }
}
