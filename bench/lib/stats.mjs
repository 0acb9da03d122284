/** Small statistics helpers: percentiles by nearest rank, and the median/min/max summary the tables print. */

/** Sorted copy, ascending. */
export function sorted(values) {
  return Float64Array.from(values).sort();
}

/** Nearest-rank percentile (p in 0..100) of an ascending array. */
export function percentile(ascending, p) {
  if (ascending.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * ascending.length);
  return ascending[Math.min(ascending.length - 1, Math.max(0, rank - 1))];
}

/** p50/p95/p99/max/mean of raw samples. */
export function distribution(values) {
  const s = sorted(values);
  let sum = 0;
  for (const v of s) sum += v;
  return {
    count: s.length,
    min: s[0] ?? NaN,
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    max: s[s.length - 1] ?? NaN,
    mean: s.length ? sum / s.length : NaN,
  };
}

/** Median and range over repeated runs. */
export function summarize(values) {
  const s = sorted(values.filter((v) => Number.isFinite(v)));
  if (s.length === 0) return { n: 0, median: NaN, min: NaN, max: NaN };
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { n: s.length, median, min: s[0], max: s[s.length - 1] };
}
