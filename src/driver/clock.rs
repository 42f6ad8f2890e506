//! Waiting for a call's due time, to the microsecond. tokio's timer wheel
//! ticks once a millisecond and rounds a deadline up to the next tick, so a
//! timetable paced on it starts every call up to a millisecond late, and
//! every latency measured from the due time carries that lateness. The
//! precise timer is a `timerfd` (an hrtimer, no slack) armed at each due
//! time and awaited through tokio's reactor: the runtime's thread sleeps in
//! `epoll_wait` until the kernel fires it, so a workload at 10 calls/s costs
//! one wake-up per call, with no spinning. Where a timerfd cannot be made,
//! and under tests that pause tokio's clock, tokio's timer serves.

use std::os::fd::OwnedFd;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// `FDSOAK_TIMER=tokio`: pace on tokio's millisecond timer instead.
pub const TIMER_ENV: &str = "FDSOAK_TIMER";

/// How a timetable waits for its next due time.
pub enum Timer {
    /// tokio's own timer (millisecond ticks; follows a paused test clock).
    Tokio,
    /// A timerfd armed at each due time.
    Precise(AsyncFd<OwnedFd>),
}

impl Timer {
    /// The precise timer, or tokio's when no timerfd can be had (saying why) or
    /// `FDSOAK_TIMER=tokio` asks for it (to compare the two, or to step around a
    /// kernel whose timerfd misbehaves).
    pub fn precise() -> Timer {
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
            Ok(fd) => Timer::Precise(fd),
            Err(e) => {
                tracing::debug!("no timerfd ({e}): the timetable uses tokio's millisecond timer");
                Timer::Tokio
            }
        }
    }

    /// Returns at `due` (at once if it has passed).
    pub async fn sleep_until(&mut self, due: Instant) {
        let Timer::Precise(fd) = self else {
            return tokio::time::sleep_until(due).await;
        };
        let left = due.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
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
}

/// Arms `fd` to fire once, `left` from now on the monotonic clock (the one tokio's
/// `Instant` reads), at an absolute time so no wake-up is lost to the arithmetic.
fn arm(fd: &OwnedFd, left: std::time::Duration) -> rustix::io::Result<()> {
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
    use std::time::Duration;

    #[tokio::test]
    async fn the_precise_timer_fires_at_the_due_time_not_a_tick_later() {
        let mut timer = Timer::precise();
        assert!(matches!(timer, Timer::Precise(_)), "a timerfd on Linux");
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
}
