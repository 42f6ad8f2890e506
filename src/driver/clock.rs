//! Waiting for a call's due time, to the microsecond. tokio's timer wheel
//! ticks once a millisecond and rounds a deadline up to the next tick, so a
//! timetable paced on it starts every call up to a millisecond late, and
//! every latency measured from the due time carries that lateness. The
//! precise timer is a `timerfd` (an hrtimer, no slack) armed at each due
//! time and awaited through tokio's reactor: the runtime's thread sleeps in
//! `epoll_wait` until the kernel fires it, so a workload at 10 calls/s costs
//! one wake-up per call. A wake-up itself takes tens of microseconds (the
//! kernel's, then the runtime's), more after a long idle, so the timer is
//! armed a little before the due time and the last stretch is spent polling:
//! the timetable yields to the runtime (whose other tasks keep running) and
//! looks at the clock again, until the due time comes. How early it is armed
//! follows how late the wake-ups have been ([`Early`]), and is at most
//! [`MAX_EARLY`] and an eighth of the timetable's period, so polling never
//! takes more than a small share of a core at any rate. Where a timerfd
//! cannot be made, and under tests that pause tokio's clock, tokio's timer
//! serves.

use std::os::fd::OwnedFd;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// `FDSOAK_TIMER=tokio`: pace on tokio's millisecond timer instead.
pub(crate) const TIMER_ENV: &str = "FDSOAK_TIMER";

/// The longest stretch before a due time spent polling rather than asleep:
/// beyond a wake-up's latency even from a deep idle.
pub(crate) const MAX_EARLY: Duration = Duration::from_micros(400);
/// How early the timer is armed at first, before any wake-up has been seen.
const FIRST_EARLY: Duration = Duration::from_micros(60);
/// Kept between the latest wake-ups and the due time.
const MARGIN: Duration = Duration::from_micros(10);

/// How long before each due time the timer is armed: it follows the wake-ups'
/// lateness, rising a quarter of the way to a late one at once and falling back
/// slowly, so the margin covers most wake-ups without one outlier setting it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Early {
    now: Duration,
    cap: Duration,
}

impl Early {
    /// For a timetable of this period: at most [`MAX_EARLY`] and an eighth of the period.
    pub(crate) fn new(period: Duration) -> Early {
        let cap = MAX_EARLY.min(period / 8);
        Early {
            now: FIRST_EARLY.min(cap),
            cap,
        }
    }

    /// How early the next timer is armed.
    pub(crate) fn get(&self) -> Duration {
        self.now
    }

    /// A timer woke `late` after the time it was armed for.
    pub(crate) fn learn(&mut self, late: Duration) {
        let want = (late + MARGIN).min(self.cap);
        self.now = if want > self.now {
            self.now + (want - self.now) / 4
        } else {
            self.now - (self.now - want) / 64
        };
    }
}

/// How a timetable waits for its next due time.
pub(crate) enum Timer {
    /// tokio's own timer (millisecond ticks; follows a paused test clock).
    Tokio,
    /// A timerfd armed `early` before each due time; the rest is polled.
    Precise { fd: AsyncFd<OwnedFd>, early: Early },
}

impl Timer {
    /// The precise timer, or tokio's when no timerfd can be had (saying why) or
    /// `FDSOAK_TIMER=tokio` asks for it (to compare the two, or to step around a
    /// kernel whose timerfd misbehaves).
    pub(crate) fn precise(period: Duration) -> Timer {
        use rustix::time::{timerfd_create, TimerfdClockId, TimerfdFlags};
        if std::env::var_os(TIMER_ENV).is_some_and(|v| v == "tokio") {
            return Timer::Tokio;
        }
        let register = |fd: OwnedFd| {
            // SAFETY: the OwnedFd is the timerfd just made, owned by the AsyncFd from here
            // on: it stays open, and the same, until the AsyncFd is dropped.
            unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }.map_err(|e| e.into_parts().1)
        };
        let made = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .map_err(std::io::Error::from)
        .and_then(register);
        match made {
            Ok(fd) => Timer::Precise {
                fd,
                early: Early::new(period),
            },
            Err(e) => {
                tracing::debug!("no timerfd ({e}): the timetable uses tokio's millisecond timer");
                Timer::Tokio
            }
        }
    }

    /// Returns at `due` (at once if it has passed).
    pub(crate) async fn sleep_until(&mut self, due: Instant) {
        let Timer::Precise { fd, early } = self else {
            return tokio::time::sleep_until(due).await;
        };
        let asleep = due
            .saturating_duration_since(Instant::now())
            .saturating_sub(early.get());
        if !asleep.is_zero() {
            let wake_at = Instant::now() + asleep;
            wait(fd, asleep, due).await;
            early.learn(Instant::now().saturating_duration_since(wake_at));
        }
        // The last stretch: other tasks run between looks at the clock.
        while Instant::now() < due {
            tokio::task::yield_now().await;
        }
    }
}

/// Waits until the timerfd, armed `left` from now, fires.
async fn wait(fd: &AsyncFd<OwnedFd>, left: Duration, due: Instant) {
    if arm(fd.get_ref(), left).is_err() {
        return tokio::time::sleep_until(due).await;
    }
    loop {
        let Ok(mut ready) = fd.readable().await else {
            return tokio::time::sleep_until(due).await;
        };
        // The expiry count: 8 bytes once the timer fired; WouldBlock before.
        let mut buf = [0u8; 8];
        match rustix::io::read(ready.get_inner(), &mut buf) {
            Ok(_) => return,
            Err(rustix::io::Errno::AGAIN) => ready.clear_ready(),
            Err(_) => return tokio::time::sleep_until(due).await,
        }
    }
}

/// Arms `fd` to fire once, `left` from now on the monotonic clock (the one tokio's
/// `Instant` reads), at an absolute time so no wake-up is lost to the arithmetic.
fn arm(fd: &OwnedFd, left: Duration) -> rustix::io::Result<()> {
    use rustix::time::{clock_gettime, timerfd_settime, ClockId, Itimerspec, TimerfdTimerFlags, Timespec};
    let now = clock_gettime(ClockId::Monotonic);
    let ns = now.tv_nsec as u128 + left.subsec_nanos() as u128;
    let value = Timespec {
        tv_sec: now.tv_sec + left.as_secs() as i64 + (ns / 1_000_000_000) as i64,
        tv_nsec: (ns % 1_000_000_000) as _,
    };
    let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
    timerfd_settime(
        fd,
        TimerfdTimerFlags::ABSTIME,
        &Itimerspec {
            it_interval: zero,
            it_value: value,
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_precise_timer_fires_at_the_due_time_not_a_tick_later() {
        let mut timer = Timer::precise(Duration::from_millis(2));
        assert!(matches!(timer, Timer::Precise { .. }), "a timerfd on Linux");
        let mut late = Vec::new();
        for _ in 0..50 {
            let due = Instant::now() + Duration::from_micros(1300);
            timer.sleep_until(due).await;
            let now = Instant::now();
            assert!(now >= due, "returned before its due time");
            late.push(now - due);
        }
        late.sort();
        // tokio's wheel would round 1.3 ms up to 2 ms: 700 µs late at best.
        assert!(late[25] < Duration::from_micros(500), "median lateness {:?}", late[25]);
    }

    #[test]
    fn the_polled_stretch_follows_the_wake_ups_within_a_small_share_of_the_period() {
        let us = Duration::from_micros;
        for (period, first) in [(100_000, 60), (500, 60), (50, 6)] {
            let early = Early::new(us(period));
            assert!(
                early.get() <= us(first).max(us(period) / 8),
                "period {period} µs: {early:?}"
            );
        }
        // Wake-ups 150 µs late at 200/s: the margin grows past them, never past the cap.
        let mut early = Early::new(us(5_000));
        for _ in 0..100 {
            early.learn(us(150));
        }
        assert!(early.get() >= us(150) && early.get() <= us(170), "{early:?}");
        for _ in 0..100 {
            early.learn(us(10_000));
        }
        assert!(early.get() <= MAX_EARLY && early.get() > MAX_EARLY - us(1), "{early:?}");
        // One late wake-up among prompt ones raises it by a quarter of the gap, then it falls back.
        let mut early = Early::new(us(5_000));
        for _ in 0..500 {
            early.learn(us(5));
        }
        let settled = early.get();
        early.learn(us(200));
        assert!(early.get() < settled + us(60), "{early:?}");
        for _ in 0..500 {
            early.learn(us(5));
        }
        assert!(early.get() <= settled + us(1), "{early:?} against {settled:?}");
        // At 20,000/s (50 µs apart), at most an eighth of the period is polled.
        let mut fast = Early::new(us(50));
        fast.learn(us(1_000));
        assert!(fast.get() <= us(7), "{fast:?}");
    }
}
