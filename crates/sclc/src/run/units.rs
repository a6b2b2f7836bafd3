//! How `sclc run` prints numbers: durations (`*_ns` columns) in human units, and the
//! summary columns of a table that holds only histograms.

/// True when the column `name` holds nanoseconds (its name ends in `_ns`): tables print
/// it in human units, JSON and CSV keep the integer.
pub fn is_ns(name: &str) -> bool {
    name.ends_with("_ns")
}

/// `ns` nanoseconds with three significant digits in the largest unit that keeps the
/// number at least 1: `850ns`, `12.3us`, `4.56ms`, `1.20s`; a minute and over stays in
/// seconds (`754s`).
pub fn human_ns(ns: u64) -> String {
    const UNITS: [(f64, &str); 3] = [(1e9, "s"), (1e6, "ms"), (1e3, "us")];
    for (scale, unit) in UNITS {
        if ns as f64 >= scale {
            let v = ns as f64 / scale;
            let digits = if v >= 100.0 { 0 } else if v >= 10.0 { 1 } else { 2 };
            // Rounding can carry into the next decade (999.6us): print it in that unit.
            let text = format!("{v:.digits$}");
            if unit != "s" && text.len() > 3 && text.starts_with("1000") {
                return human_ns(ns.div_ceil(1000) * 1000);
            }
            return format!("{text}{unit}");
        }
    }
    format!("{ns}ns")
}

/// The columns a table of histograms alone shows without `--hist`: the number of samples
/// and, as log2 bucket upper bounds, the median, the 99th percentile and the maximum.
pub const HIST_SUMMARY: [&str; 4] = ["count", "p50_ns", "p99_ns", "max_ns"];

/// [`HIST_SUMMARY`] of a log2 histogram (bucket `k` holds values in `[2^k, 2^(k+1))`,
/// bucket 0 also 0 and 1): each quantile is the upper bound of the bucket it falls in.
pub fn hist_summary(buckets: &[u64]) -> [u64; 4] {
    let count: u64 = buckets.iter().sum();
    let upper = |k: usize| 1u64.checked_shl(k as u32 + 1).unwrap_or(u64::MAX);
    let quantile = |q: f64| {
        let rank = ((count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (k, n) in buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return upper(k);
            }
        }
        0
    };
    if count == 0 {
        return [0; 4];
    }
    let max = buckets.iter().rposition(|n| *n > 0).map_or(0, upper);
    [count, quantile(0.5), quantile(0.99), max]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanoseconds_read_in_the_unit_people_use() {
        let table: [(u64, &str); 12] = [
            (0, "0ns"),
            (999, "999ns"),
            (1_000, "1.00us"),
            (1_234, "1.23us"),
            (12_345, "12.3us"),
            (123_456, "123us"),
            (999_999, "1.00ms"),
            (4_560_000, "4.56ms"),
            (35_000_000, "35.0ms"),
            (1_200_000_000, "1.20s"),
            (754_000_000_000, "754s"),
            (u64::MAX, "18446744074s"),
        ];
        for (ns, text) in table {
            assert_eq!(human_ns(ns), text, "{ns} ns");
        }
    }

    #[test]
    fn a_histogram_summary_gives_bucket_upper_bounds() {
        let mut b = vec![0u64; 64];
        assert_eq!(hist_summary(&b), [0, 0, 0, 0]);
        b[10] = 98; // [1024, 2048)
        b[12] = 1; // [4096, 8192)
        b[20] = 1; // [1 Mi, 2 Mi)
        assert_eq!(hist_summary(&b), [100, 2048, 8192, 2 << 20]);
        b[63] = 1;
        assert_eq!(hist_summary(&b)[3], u64::MAX, "the last bucket's bound saturates");
    }
}
