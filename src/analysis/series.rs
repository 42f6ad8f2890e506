//! A fixed-size, downsampled time series and a robust slope over it.
//!
//! [`Series`] keeps at most [`CAPACITY`] points however long the run: when it
//! fills, neighbouring points are averaged in pairs and each new point
//! stands for twice as many samples. [`theil_sen`] takes the median of all
//! pairwise slopes, which ignores up to about 29% outliers, so a burst of
//! short-lived connections does not read as growth.

/// Points kept per series; the slope then costs about CAPACITY²/2 divisions.
pub(crate) const CAPACITY: usize = 512;

#[derive(Debug, Clone, Default)]
pub(crate) struct Series {
    points: Vec<(f64, f64)>,
    /// Raw samples per stored point.
    stride: usize,
    pending: (f64, f64, usize),
}

impl Series {
    pub(crate) fn push(&mut self, t: f64, v: f64) {
        let stride = self.stride.max(1);
        self.pending = (self.pending.0 + t, self.pending.1 + v, self.pending.2 + 1);
        if self.pending.2 < stride {
            return;
        }
        let (st, sv, n) = std::mem::take(&mut self.pending);
        self.points.push((st / n as f64, sv / n as f64));
        if self.points.len() == CAPACITY {
            self.points = self
                .points
                .chunks(2)
                .map(|c| ((c[0].0 + c[1].0) / 2.0, (c[0].1 + c[1].1) / 2.0))
                .collect();
            self.stride = stride * 2;
        }
    }

    /// The stored points plus any partial bucket.
    pub(crate) fn points(&self) -> Vec<(f64, f64)> {
        let mut p = self.points.clone();
        let (st, sv, n) = self.pending;
        if n > 0 {
            p.push((st / n as f64, sv / n as f64));
        }
        p
    }

    pub(crate) fn slope(&self) -> Option<f64> {
        theil_sen(&self.points())
    }
}

/// Median of pairwise slopes (per unit of t). None with fewer than two distinct times.
pub(crate) fn theil_sen(points: &[(f64, f64)]) -> Option<f64> {
    let mut slopes = Vec::with_capacity(points.len() * points.len().saturating_sub(1) / 2);
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            let dt = b.0 - a.0;
            if dt.abs() > 1e-9 {
                slopes.push((b.1 - a.1) / dt);
            }
        }
    }
    if slopes.is_empty() {
        return None;
    }
    let mid = slopes.len() / 2;
    let (_, m, _) = slopes.select_nth_unstable_by(mid, f64::total_cmp);
    Some(*m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line_is_exact() {
        let pts: Vec<_> = (0..100).map(|i| (i as f64, 3.0 * i as f64 + 7.0)).collect();
        assert!((theil_sen(&pts).unwrap() - 3.0).abs() < 1e-9);
    }

    #[test]
    fn flat_noise_with_spikes_has_no_slope() {
        // A flat count of 20 with churn noise and a few large transient spikes.
        let pts: Vec<_> = (0..200)
            .map(|i| {
                let noise = [0.0, 1.0, -1.0, 2.0, 0.0][i % 5];
                let spike = if i % 37 == 0 { 40.0 } else { 0.0 };
                (i as f64 * 0.25, 20.0 + noise + spike)
            })
            .collect();
        assert!(theil_sen(&pts).unwrap().abs() < 0.01);
    }

    #[test]
    fn series_stays_bounded_and_keeps_the_slope() {
        let mut s = Series::default();
        for i in 0..100_000 {
            s.push(i as f64, 0.5 * i as f64 + (i % 3) as f64);
        }
        assert!(s.points().len() <= CAPACITY + 1);
        assert!((s.slope().unwrap() - 0.5).abs() < 0.01);
    }

    #[test]
    fn too_few_points_give_no_slope() {
        assert_eq!(theil_sen(&[]), None);
        assert_eq!(theil_sen(&[(1.0, 1.0)]), None);
        assert_eq!(theil_sen(&[(1.0, 1.0), (1.0, 5.0)]), None);
    }
}
