//! Summaries of repeated measurements.

/// The value below which `share` (0 to 1) of the sorted `values` lie, by
/// nearest rank; NaN for no values.
pub fn percentile(sorted: &[f64], share: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (share * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The values sorted, NaN-free.
pub fn sorted(values: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut values: Vec<f64> = values.into_iter().filter(|v| !v.is_nan()).collect();
    values.sort_by(f64::total_cmp);
    values
}

/// The median, smallest and largest of repeated measurements.
#[derive(Clone, Copy, Debug)]
pub struct Spread {
    /// The middle value (the lower middle of an even count).
    pub median: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; NaN everywhere for none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let values = sorted(values);
        Self {
            median: percentile(&values, 0.5),
            min: values.first().copied().unwrap_or(f64::NAN),
            max: values.last().copied().unwrap_or(f64::NAN),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_taken_by_nearest_rank() {
        let values = sorted((1..=100).map(f64::from));

        assert_eq!(percentile(&values, 0.5), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&values, 1.0), 100.0);
        assert_eq!(percentile(&values, 0.0), 1.0);
    }

    #[test]
    fn a_spread_has_the_middle_and_the_ends() {
        let spread = Spread::of([3.0, 1.0, 2.0]);

        assert_eq!((spread.median, spread.min, spread.max), (2.0, 1.0, 3.0));
    }
}
