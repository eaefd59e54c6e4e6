//! What keeps a report page small and fast for long logs (8 ranks x 100,000 records): times spread within their
//! second, the timeline as counts per time bucket, and statistics series decimated to a bounded number of points
//! that keeps each bucket's lowest minimum and highest maximum and the calls with a NaN or an Inf.

use std::collections::HashMap;

/// Points kept per statistics series (per file, call name and argument), NaN/Inf points included.
pub const MAX_POINTS: usize = 2000;
/// Time buckets of the timeline.
pub const BUCKETS: usize = 400;

/// One tensor's statistics at one call or graph replay.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Seconds since the report's zero.
    pub x: f64,
    /// Minimum (None when not finite).
    pub min: Option<f64>,
    /// Maximum (None when not finite).
    pub max: Option<f64>,
    /// Mean (None when not finite).
    pub mean: Option<f64>,
    /// NaN count.
    pub nan: u64,
    /// Inf count.
    pub inf: u64,
    /// The call's header line.
    pub line: u64,
    /// Whether it is a graph replay record.
    pub replay: bool,
}

impl Point {
    fn nonfinite(&self) -> bool {
        self.nan + self.inf > 0 || self.min.is_none() || self.max.is_none() || self.mean.is_none()
    }
}

/// A statistics series and how many points it had before decimation.
pub struct Series {
    /// The points kept, in time order.
    pub points: Vec<Point>,
    /// Points read.
    pub total: usize,
}

/// Seconds since zero of a reader time (`second * 1e6 + order in the second`): the calls of a second are spread
/// evenly over it in the order of their records, `last` giving the highest order seen in each second.
pub fn spread(ts: u64, last: &HashMap<u64, u64>) -> f64 {
    let (second, order) = (ts / 1_000_000, ts % 1_000_000);
    let n = last.get(&second).copied().unwrap_or(1).max(1);
    second as f64 + (order.max(1) as f64 - 0.5) / n as f64
}

/// At most `max` points of `points` (in time order): all of them when they fit; else per bucket of equal
/// count, the point of the lowest minimum and of the highest maximum, and every point with a NaN or an Inf
/// (while they are at most `max / 2`; beyond that, the first of each bucket).
pub fn decimate(points: Vec<Point>, max: usize) -> Series {
    let total = points.len();
    if total <= max {
        return Series { points, total };
    }
    let nonfinite = points.iter().filter(|p| p.nonfinite()).count();
    let every_nonfinite = nonfinite <= max / 2;
    let buckets = if every_nonfinite { (max - nonfinite) / 2 } else { max / 3 }.max(1);
    let mut keep = vec![false; total];
    for b in 0..buckets {
        let (lo, hi) = (b * total / buckets, (b + 1) * total / buckets);
        let slice = &points[lo..hi];
        let pick = |key: &dyn Fn(&Point) -> Option<f64>, lowest: bool| {
            slice
                .iter()
                .enumerate()
                .filter_map(|(i, p)| key(p).map(|v| (i, v)))
                .reduce(|a, b| if (b.1 < a.1) == lowest && b.1 != a.1 { b } else { a })
                .map(|(i, _)| lo + i)
        };
        for i in [pick(&|p| p.min, true), pick(&|p| p.max, false)].into_iter().flatten() {
            keep[i] = true;
        }
        if !every_nonfinite {
            if let Some(i) = slice.iter().position(Point::nonfinite) {
                keep[lo + i] = true;
            }
        }
    }
    let points: Vec<Point> = points
        .into_iter()
        .zip(keep)
        .filter(|(p, k)| *k || (every_nonfinite && p.nonfinite()))
        .map(|(p, _)| p)
        .collect();
    Series { points, total }
}

/// Calls per bucket of `width` seconds for each of `names` name indexes (the last row counts every other name).
pub fn buckets(times: &[(f64, u32)], width: f64, names: &[u32]) -> Vec<Vec<u32>> {
    let mut rows = vec![vec![0u32; BUCKETS]; names.len() + 1];
    for &(x, name) in times {
        let b = ((x / width) as usize).min(BUCKETS - 1);
        let row = names.iter().position(|&n| n == name).unwrap_or(names.len());
        rows[row][b] += 1;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(i: usize, min: f64, nan: u64) -> Point {
        let v = if nan > 0 { None } else { Some(min) };
        Point { x: i as f64, min: v, max: v.map(|m| m + 1.0), mean: v, nan, inf: 0, line: i as u64, replay: false }
    }

    #[test]
    fn decimation_bounds_points_and_keeps_extremes_and_every_nan() {
        let mut pts: Vec<Point> = (0..100_000).map(|i| point(i, (i % 97) as f64, 0)).collect();
        pts[12_345] = point(12_345, -50.0, 0);
        pts[77_777] = point(77_777, 500.0, 0);
        for i in [3, 40_000, 40_001, 99_999] {
            pts[i] = point(i, 0.0, 2);
        }
        let s = decimate(pts, MAX_POINTS);
        assert_eq!(s.total, 100_000);
        assert!(s.points.len() <= MAX_POINTS, "{}", s.points.len());
        assert!(s.points.windows(2).all(|w| w[0].x < w[1].x));
        let lines: Vec<u64> = s.points.iter().filter(|p| p.nan > 0).map(|p| p.line).collect();
        assert_eq!(lines, [3, 40_000, 40_001, 99_999]);
        assert!(s.points.iter().any(|p| p.min == Some(-50.0)) && s.points.iter().any(|p| p.max == Some(501.0)));
    }

    #[test]
    fn decimation_of_a_series_of_nans_stays_bounded() {
        let s = decimate((0..50_000).map(|i| point(i, 0.0, 1)).collect(), MAX_POINTS);
        assert!(s.points.len() <= MAX_POINTS && s.points.len() >= MAX_POINTS / 3, "{}", s.points.len());
        assert_eq!(decimate((0..10).map(|i| point(i, 0.0, 0)).collect(), MAX_POINTS).points.len(), 10);
    }

    #[test]
    fn calls_of_a_second_are_spread_over_it_in_order() {
        let last = HashMap::from([(0, 4), (2, 1)]);
        let xs: Vec<f64> = [1, 2, 3, 4, 2_000_001].iter().map(|&ts| spread(ts, &last)).collect();
        assert_eq!(xs, [0.125, 0.375, 0.625, 0.875, 2.5]);
        let rows = buckets(&[(0.0, 0), (0.5, 1), (1e9, 2)], 1.0, &[1]);
        assert_eq!((rows[0][0], rows[1][0], rows[1][BUCKETS - 1]), (1, 1, 1));
    }
}
