//! The search itself, apart from git and runs: commits in a line from the good
//! end (0) to the bad end (n), each marked as it is tried, and the next one to
//! try. The next is the untried commit nearest the middle of the last good and
//! the first bad, so a skipped commit costs one try of its neighbour.

/// What a try of a commit said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mark {
    Good,
    Bad,
    /// It could not be judged: its build failed, or its run did not finish.
    Skip,
}

/// What to do next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next {
    Try(usize),
    /// The first bad commit, every commit before it tried good or implied good.
    Found(usize),
    /// Skipped commits stand between the last good and the first bad: any of these may be first.
    Undecided(Vec<usize>),
}

/// The marks of the commits from the good end to the bad end.
#[derive(Debug, Clone)]
pub(super) struct Line {
    marks: Vec<Option<Mark>>,
}

impl Line {
    /// A line of `n + 1` commits: the good end, the `n - 1` between, the bad end.
    pub(super) fn new(n: usize) -> Line {
        Line {
            marks: vec![None; n + 1],
        }
    }

    pub(super) fn mark(&mut self, i: usize, m: Mark) {
        self.marks[i] = Some(m);
    }

    /// The first commit marked bad (the bad end until one before it is), and
    /// the last marked good before it (the good end until one after it is).
    fn bounds(&self) -> (usize, usize) {
        let last = self.marks.len() - 1;
        let hi = (0..=last).find(|&i| self.marks[i] == Some(Mark::Bad)).unwrap_or(last);
        let lo = (0..hi).rev().find(|&i| self.marks[i] == Some(Mark::Good)).unwrap_or(0);
        (lo, hi)
    }

    pub(super) fn next(&self) -> Next {
        let (lo, hi) = self.bounds();
        let untried: Vec<usize> = (lo + 1..hi).filter(|&i| self.marks[i].is_none()).collect();
        // Nearest the middle; between two as near, the earlier.
        match untried.iter().min_by_key(|&&i| ((2 * i).abs_diff(lo + hi), i)) {
            Some(&i) => Next::Try(i),
            None if hi - lo == 1 => Next::Found(hi),
            None => Next::Undecided((lo + 1..=hi).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bisects a line of `n + 1` commits where `first_bad` is the first bad
    /// one and `skipped` cannot be judged; returns the result and the tries.
    fn bisect(n: usize, first_bad: usize, skipped: &[usize]) -> (Next, Vec<usize>) {
        let mut line = Line::new(n);
        line.mark(0, Mark::Good);
        line.mark(n, Mark::Bad);
        let mut tried = Vec::new();
        loop {
            match line.next() {
                Next::Try(i) => {
                    tried.push(i);
                    let m = if skipped.contains(&i) {
                        Mark::Skip
                    } else if i >= first_bad {
                        Mark::Bad
                    } else {
                        Mark::Good
                    };
                    line.mark(i, m);
                }
                done => return (done, tried),
            }
        }
    }

    #[test]
    fn finds_every_first_bad_commit_in_log2_tries() {
        for n in 1..40usize {
            for first in 1..=n {
                let (found, tried) = bisect(n, first, &[]);
                assert_eq!(found, Next::Found(first), "n={n} first={first}");
                let bound = (usize::BITS - n.leading_zeros()) as usize;
                assert!(tried.len() <= bound, "n={n} first={first}: {tried:?}");
            }
        }
    }

    #[test]
    fn a_skipped_commit_costs_one_more_try() {
        // The good end is commit 1 and the bad end commit 13; 7 fails to build, 11 is first bad.
        let (found, tried) = bisect(12, 10, &[6]);
        assert_eq!(found, Next::Found(10));
        assert_eq!(tried[0], 6, "the middle first: {tried:?}");
        assert!(tried.len() <= 5, "{tried:?}");
    }

    #[test]
    fn skipped_commits_next_to_the_first_bad_leave_it_undecided() {
        let (found, _) = bisect(10, 5, &[4]);
        assert_eq!(found, Next::Undecided(vec![4, 5]));
        let (found, _) = bisect(10, 5, &[5]);
        assert_eq!(found, Next::Undecided(vec![5, 6]));
    }
}
