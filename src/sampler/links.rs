//! Every descriptor's link target, read in parallel when there are many.
//!
//! The floor of a sample is the kernel's work per descriptor: one directory
//! entry in `/proc/PID/fd`, then one `readlinkat` on it (a lookup and a
//! permission check each time, about 2.5 µs on the machines measured). Nothing
//! reads a process's descriptors in bulk, so past [`PARALLEL_FROM`]
//! descriptors the names are listed once and their links are read by up to
//! [`MAX_READERS`] scoped threads, each folding into an accumulator of its
//! own: the cost stays linear in the descriptors, and is shared over the
//! cores. Threads started from the sampler's thread inherit its lowered
//! priority, so they still yield to the driver.
//!
//! [`overlapped`] runs another read (the host's socket table) beside the
//! listing and the links, on a thread of its own, when [`count_hint`] says the
//! listing will be long enough to pay for it.

use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags, CWD};
use std::ffi::CStr;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// From this many descriptors, links are read by more than one thread.
pub const PARALLEL_FROM: usize = 2048;
/// At most this many threads read links, the caller's included.
pub const MAX_READERS: usize = 4;

/// A process's `/proc/PID/fd`, listed: its descriptor numbers, in the kernel's order.
pub struct FdDir {
    dir: OwnedFd,
    fds: Vec<i32>,
}

impl FdDir {
    /// Lists `pid`'s descriptors. When `pid` is this process, the listing's own handle is left out.
    pub fn open(pid: i32) -> io::Result<FdDir> {
        let dir: OwnedFd = rustix::fs::openat(
            CWD,
            format!("/proc/{pid}/fd"),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut fds = Vec::new();
        let mut entries = rustix::fs::Dir::read_from(&dir)?;
        while let Some(entry) = entries.read() {
            let entry = entry?;
            // "." and "..", and anything else not a number, are not descriptors.
            if let Some(fd) = std::str::from_utf8(entry.file_name().to_bytes())
                .ok()
                .and_then(|s| s.parse().ok())
            {
                fds.push(fd);
            }
        }
        drop(entries);
        if pid == std::process::id() as i32 {
            use rustix::fd::AsRawFd;
            let own = dir.as_raw_fd();
            fds.retain(|fd| *fd != own);
        }
        Ok(FdDir { dir, fds })
    }

    /// How many descriptors were listed.
    pub fn len(&self) -> usize {
        self.fds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }

    /// Whether the links are read by more than one thread.
    pub fn is_long(&self) -> bool {
        is_long(self.fds.len())
    }

    /// Reads every descriptor's link and calls `visit(acc, fd, link)`, with one
    /// accumulator made by `init` per reading thread; returns the accumulators.
    /// A descriptor closed while it is read is left out.
    ///
    /// The caller's thread reads too, and the readers take [`CHUNK`] descriptors at
    /// a time, so the work is shared however the cores are: the helpers run at the
    /// idle priority (they get a core only when nothing else wants it, so they never
    /// delay a driver's call), and the caller's thread reads whatever they do not.
    pub fn read<A: Send>(&self, init: impl Fn() -> A + Sync, visit: impl Fn(&mut A, i32, &[u8]) + Sync) -> Vec<A> {
        let next = AtomicUsize::new(0);
        let read_chunks = || {
            let mut acc = init();
            let mut link = [0u8; 512];
            loop {
                let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                let Some(fds) = self.fds.get(start..(start + CHUNK).min(self.fds.len())) else {
                    break;
                };
                for fd in fds {
                    let mut name = [0u8; 16];
                    let Ok(n) = rustix::fs::readlinkat_raw(&self.dir, fd_name(*fd, &mut name), &mut link[..]) else {
                        continue;
                    };
                    visit(&mut acc, *fd, &link[..n.min(link.len())]);
                }
            }
            acc
        };
        let helpers = readers(self.fds.len()) - 1;
        if helpers == 0 {
            return vec![read_chunks()];
        }
        std::thread::scope(|s| {
            let spawned: Vec<_> = (0..helpers)
                .map(|_| {
                    s.spawn(|| {
                        idle_priority();
                        read_chunks()
                    })
                })
                .collect();
            let mut out = vec![read_chunks()];
            for h in spawned {
                out.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            }
            out
        })
    }
}

/// Descriptors a reader takes at a time: about a third of a millisecond of work.
pub const CHUNK: usize = 128;

/// Puts this thread in the idle scheduling class: it runs only on a core nothing
/// else wants, and any other thread that wakes takes the core from it at once.
/// Best effort: a refusal leaves it as it was.
fn idle_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: sched_setscheduler on the calling thread (pid 0) with a valid parameter.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        let _ = libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}

/// How many descriptors `pid` has open, before listing them: the size Linux 6.2 and
/// later give `/proc/PID/fd`. `None` where it is 0 (older kernels) or unreadable.
pub fn count_hint(pid: i32) -> Option<usize> {
    let st = rustix::fs::stat(format!("/proc/{pid}/fd")).ok()?;
    usize::try_from(st.st_size).ok().filter(|n| *n > 0)
}

/// Whether a listing of `n` descriptors is long enough to be read by more than one thread.
pub fn is_long(n: usize) -> bool {
    readers(n) > 1
}

/// Runs `links` here and `other` beside it on a thread of its own when `together`
/// (a long listing); otherwise `other` is not run, and is `None`.
pub fn overlapped<L, O: Send>(
    together: bool,
    links: impl FnOnce() -> L,
    other: impl FnOnce() -> O + Send,
) -> (L, Option<O>) {
    if !together {
        return (links(), None);
    }
    std::thread::scope(|s| {
        let other = s.spawn(other);
        let l = links();
        (l, other.join().ok())
    })
}

/// How many threads read `n` links.
fn readers(n: usize) -> usize {
    if n < PARALLEL_FROM {
        return 1;
    }
    static CORES: OnceLock<usize> = OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |c| c.get()));
    cores.min(MAX_READERS).min(n / (PARALLEL_FROM / 2)).max(1)
}

/// `fd` in decimal, NUL-terminated, in `buf`.
fn fd_name(fd: i32, buf: &mut [u8; 16]) -> &CStr {
    // Descriptors are never negative; at most 10 digits.
    let mut v = fd.unsigned_abs();
    let mut digits = [0u8; 10];
    let mut n = 0;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for (i, d) in digits[..n].iter().rev().enumerate() {
        buf[i] = *d;
    }
    buf[n] = 0;
    // The digits hold no NUL, and the one written ends them.
    CStr::from_bytes_until_nul(&buf[..]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_descriptor_is_read_once_whether_one_thread_reads_or_several() {
        // Enough descriptors of our own that the links are read in parallel.
        let files: Vec<std::fs::File> = (0..PARALLEL_FROM + 100)
            .map(|_| std::fs::File::open("/dev/null").unwrap())
            .collect();
        let dir = FdDir::open(std::process::id() as i32).unwrap();
        assert!(dir.len() >= files.len());
        let per_thread = dir.read(Vec::new, |acc: &mut Vec<i32>, fd, link| {
            if link == b"/dev/null" {
                acc.push(fd)
            }
        });
        let mut seen: Vec<i32> = per_thread.into_iter().flatten().collect();
        seen.sort();
        let mut want: Vec<i32> = files.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect();
        want.sort();
        assert!(
            want.iter().all(|fd| seen.binary_search(fd).is_ok()),
            "some descriptors were not read"
        );
        let read = seen.len();
        seen.dedup();
        assert_eq!(seen.len(), read, "a descriptor was read twice");
    }

    #[test]
    fn short_listings_are_read_on_the_callers_thread_only() {
        assert_eq!(readers(10), 1);
        assert_eq!(readers(PARALLEL_FROM - 1), 1);
        assert!(readers(1_000_000) <= MAX_READERS);
        let mut buf = [0u8; 16];
        assert_eq!(fd_name(1234, &mut buf).to_bytes(), b"1234");
    }
}
