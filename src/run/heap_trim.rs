//! Gives the driver's freed heap back to the kernel every few seconds.
//!
//! A blackhole or a burst of per-call channels holds hundreds of connections
//! open at once, each with its HTTP/2 buffers. When they close, glibc keeps
//! the freed pages in its arenas, so the driver's RSS stays at the peak for
//! the rest of the run: a step that reads like growth in a soak's memory
//! series. `malloc_trim(0)` releases every free page in every arena
//! (`madvise(MADV_DONTNEED)`). It runs on the sampler's thread, not the
//! driver's, every [`TRIM_EVERY`], and keeps the RSS at what is live (over
//! an hour of `bench/faulted-soak.toml`, the floor grew 0.9 MB).

use crate::domain::{SampleSink, Tick};
use std::time::{Duration, Instant};

/// How often the driver's heap is trimmed.
pub(crate) const TRIM_EVERY: Duration = Duration::from_secs(5);

/// A sampler sink that trims the heap at most once per [`TRIM_EVERY`].
pub(crate) struct HeapTrim {
    last: Instant,
}

impl HeapTrim {
    pub(crate) fn new() -> HeapTrim {
        HeapTrim { last: Instant::now() }
    }
}

impl Default for HeapTrim {
    fn default() -> Self {
        HeapTrim::new()
    }
}

impl SampleSink for HeapTrim {
    fn tick(&mut self, _tick: &Tick<'_>) -> anyhow::Result<()> {
        if self.last.elapsed() >= TRIM_EVERY {
            self.last = Instant::now();
            trim();
        }
        Ok(())
    }
}

/// Releases the allocator's free pages, where the allocator is glibc's.
pub(crate) fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the arenas' own locks and only returns free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    /// Resident bytes of this process, from the kernel.
    fn rss() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        pages * rustix::param::page_size() as u64
    }

    #[test]
    fn trimming_gives_freed_pages_back_to_the_kernel() {
        // About 54 MB in small blocks; every 64th stays alive, so the heap cannot
        // shrink from its top and the freed pages sit between live blocks, as
        // they do after a burst of connections.
        let blocks: Vec<Box<[u8; 256]>> = (0..200_000).map(|i| Box::new([i as u8; 256])).collect();
        let kept: Vec<Box<[u8; 256]>> = blocks.into_iter().step_by(64).collect();
        let before = rss();
        super::trim();
        let after = rss();
        assert_eq!(kept.len(), 3125);
        assert!(
            before.saturating_sub(after) > 16 << 20,
            "RSS {before} -> {after}: the freed pages stayed resident"
        );
    }
}
