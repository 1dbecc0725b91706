//! The weekly trend features of one series (docs/datasets.md, "Weekly trend features"), exact:
//! values are decimal(18,6) held as integers scaled by 10^6, every decimal feature is computed in
//! integers and rounded half away from zero, and the z-score's numerator and variance are exact
//! integers before the one square root. `emr/weekly_trends.py` computes the same with Python's
//! integers, so the two engines agree to the last bit.

/// decimal(18,6)'s largest unscaled magnitude: a feature beyond it is null, not wrapped.
pub const LIMIT: i128 = 999_999_999_999_999_999;

/// 10^6: one unit of the values' scale.
const UNIT: i128 = 1_000_000;

/// The trend features of one week of one series.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Features {
    /// v(w) − v(w−1), scaled by 10^6.
    pub wow_change: Option<i128>,
    /// (v(w) − v(w−1)) × 100 / |v(w−1)|, rounded, scaled by 10^6.
    pub wow_pct: Option<i128>,
    /// Mean of the 4-week window, rounded, scaled by 10^6.
    pub ma_4w: Option<i128>,
    /// Mean of the 13-week window, rounded, scaled by 10^6.
    pub ma_13w: Option<i128>,
    /// (v(w) − m) / s over the 13-week window.
    pub zscore_13w: Option<f64>,
}

/// `n / d` rounded half away from zero (`d > 0`).
pub fn div_round(n: i128, d: i128) -> i128 {
    if n >= 0 {
        (2 * n + d) / (2 * d)
    } else {
        -((-2 * n + d) / (2 * d))
    }
}

/// A decimal(18,6) result, or null when it does not fit.
fn fits(v: i128) -> Option<i128> {
    (v.abs() <= LIMIT).then_some(v)
}

/// The values of the `k` consecutive calendar weeks ending at `weeks[i]` (oldest first), when
/// every one of them has a row with a value: a gap is never skipped over.
fn window(weeks: &[(i32, Option<i128>)], i: usize, k: usize) -> Option<Vec<i128>> {
    let first = i.checked_sub(k - 1)?;
    let end = weeks[i].0;
    weeks[first..=i]
        .iter()
        .enumerate()
        .map(|(n, &(week, value))| {
            let wanted = end - 7 * (k - 1 - n) as i32;
            if week == wanted { value } else { None }
        })
        .collect()
}

/// The features of every week of one series. `weeks` holds its week-ending days (days since
/// 1970-01-01) ascending and distinct, each with its value (scaled by 10^6; `None` a gap).
pub fn features(weeks: &[(i32, Option<i128>)]) -> Vec<Features> {
    (0..weeks.len())
        .map(|i| {
            let pair = window(weeks, i, 2);
            let wow_change = pair.as_ref().and_then(|w| fits(w[1] - w[0]));
            let wow_pct = pair
                .as_ref()
                .filter(|w| w[0] != 0)
                .and_then(|w| fits(div_round((w[1] - w[0]) * 100 * UNIT, w[0].abs())));
            let mean = |k: usize| window(weeks, i, k).map(|w| div_round(w.iter().sum(), k as i128));
            let zscore_13w = window(weeks, i, 13).and_then(|w| zscore(&w));
            Features {
                wow_change,
                wow_pct,
                ma_4w: mean(4),
                ma_13w: mean(13),
                zscore_13w,
            }
        })
        .collect()
}

/// (x − m) / s of the window's last value x, with m its mean and s its population standard
/// deviation, as (n·x − S) / √(n·Q − S²) over the scaled values (S their sum, Q the sum of their
/// squares): both exact integers (the variance in u128, where decimal(18,6)'s extremes fit),
/// then one rounding each into f64. `None` when s = 0.
pub fn zscore(window: &[i128]) -> Option<f64> {
    let n = window.len() as i128;
    let sum: i128 = window.iter().sum();
    let last = *window.last()?;
    let numerator = n * last - sum;
    let squares: u128 = window.iter().map(|&x| x.unsigned_abs().pow(2)).sum();
    let variance = (n as u128)
        .checked_mul(squares)?
        .checked_sub(sum.unsigned_abs().checked_pow(2)?)?;
    (variance > 0).then(|| numerator as f64 / (variance as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Consecutive Fridays from 2026-08-28 with these values (in units).
    fn series(values: &[Option<i64>]) -> Vec<(i32, Option<i128>)> {
        let first = crate::parse::days_from_civil(2026, 8, 28).expect("a Friday");
        values
            .iter()
            .enumerate()
            .map(|(k, v)| (first + 7 * k as i32, v.map(|v| i128::from(v) * UNIT)))
            .collect()
    }

    #[test]
    fn fourteen_weeks_of_one_to_fourteen() {
        let values: Vec<Option<i64>> = (1..=14).map(Some).collect();
        let f = features(&series(&values));
        let last = f[13];
        assert_eq!(last.wow_change, Some(UNIT));
        // 1 × 100 / 13 = 7.6923076…
        assert_eq!(last.wow_pct, Some(7_692_308));
        assert_eq!(last.ma_4w, Some(12_500_000));
        assert_eq!(last.ma_13w, Some(8 * UNIT));
        // The population sd of 13 consecutive integers is √14.
        let z = last.zscore_13w.expect("z");
        assert!((z - 6.0 / 14f64.sqrt()).abs() < 1e-12, "{z}");
        assert_eq!(f[2].ma_4w, None, "fewer than four weeks: no average");
        assert_eq!(f[0].wow_change, None);
        assert_eq!(f[11].ma_13w, None);
    }

    #[test]
    fn a_gap_or_a_missing_week_nulls_every_window_over_it() {
        let mut values: Vec<Option<i64>> = (1..=6).map(Some).collect();
        values[2] = None;
        let f = features(&series(&values));
        assert_eq!(f[2].wow_change, None, "this week is a gap");
        assert_eq!(f[3].wow_change, None, "last week was a gap");
        assert_eq!(f[4].wow_change, Some(UNIT));
        assert_eq!(f[5].ma_4w, None, "the window holds the gap");
        // A week with no row at all: the next week's change is not against two weeks ago.
        let mut weeks = series(&[Some(1), Some(2), Some(4)]);
        weeks[2].0 += 7;
        let f = features(&weeks);
        assert_eq!(f[1].wow_change, Some(UNIT));
        assert_eq!(f[2].wow_change, None);
    }

    #[test]
    fn zero_variance_and_a_zero_previous_value_are_null() {
        let f = features(&series(&[Some(5); 13]));
        assert_eq!(f[12].zscore_13w, None);
        assert_eq!(f[12].ma_13w, Some(5 * UNIT));
        let f = features(&series(&[Some(0), Some(3)]));
        assert_eq!(f[1].wow_change, Some(3 * UNIT));
        assert_eq!(f[1].wow_pct, None, "v(w-1) = 0");
    }

    #[test]
    fn negatives_round_half_away_from_zero() {
        assert_eq!(div_round(5, 2), 3);
        assert_eq!(div_round(-5, 2), -3);
        assert_eq!(div_round(-4, 2), -2);
        assert_eq!(div_round(1, 3), 0);
        assert_eq!(div_round(-2, 3), -1);
        // -1, -2: change -1 against |-1|: -100%.
        let f = features(&series(&[Some(-1), Some(-2)]));
        assert_eq!(f[1].wow_pct, Some(-100 * UNIT));
        // An exact .5 at the 6th decimal: mean of 0.000001 and 0.000002 over 4 weeks with zeros.
        let weeks: Vec<(i32, Option<i128>)> = series(&[Some(0); 4])
            .into_iter()
            .zip([1, 2, 0, 3])
            .map(|((w, _), v)| (w, Some(v)))
            .collect();
        // (1 + 2 + 0 + 3) / 4 = 1.5 units of 10^-6 → 2.
        assert_eq!(features(&weeks)[3].ma_4w, Some(2));
        let negative: Vec<(i32, Option<i128>)> =
            weeks.iter().map(|&(w, v)| (w, v.map(|v| -v))).collect();
        assert_eq!(features(&negative)[3].ma_4w, Some(-2));
    }

    #[test]
    fn values_near_the_limit_stay_exact_or_become_null() {
        let max = LIMIT;
        let weeks: Vec<(i32, Option<i128>)> = series(&[Some(0); 13])
            .into_iter()
            .enumerate()
            .map(|(k, (w, _))| (w, Some(if k % 2 == 0 { max } else { -max })))
            .collect();
        let f = features(&weeks);
        // max − (−max) does not fit decimal(18,6): null, not wrapped.
        assert_eq!(f[12].wow_change, None);
        assert_eq!(f[12].wow_pct, Some(200 * UNIT));
        assert_eq!(f[12].ma_13w, Some(div_round(max, 13)));
        let z = f[12].zscore_13w.expect("z");
        // Seven at +max, six at −max: m = max/13, s = max·√(168)/13, z = (12/13)/(√168/13).
        let want = 12.0 / 168f64.sqrt();
        assert!((z - want).abs() < 1e-9, "{z} {want}");
        let all_max = features(
            &series(&[Some(0); 13])
                .into_iter()
                .map(|(w, _)| (w, Some(max)))
                .collect::<Vec<_>>(),
        );
        assert_eq!(all_max[12].zscore_13w, None, "zero variance at the limit");
    }
}
