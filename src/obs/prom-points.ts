/**
 * prom-client's JSON form of a registry (`getMetricsAsJSON()`), and its
 * histograms regrouped as OTLP wants them: one point per label set with
 * per-bucket counts (Prometheus's are cumulative) and the overflow bucket
 * last. Shared by the OTLP/HTTP (JSON) and OTLP/gRPC (protobuf) exports.
 */
export type PromValue = { value: number; labels: Record<string, string | number>; metricName?: string };
export type PromMetric = { name: string; help: string; type: string; values: PromValue[] };

export interface HistogramPoint {
  /** The series' labels without `le`. */
  labels: Record<string, string | number>;
  boundaries: number[];
  /** One more than `boundaries`: the last counts what is above every bound. */
  counts: number[];
  sum: number;
  count: number;
}

/** Labels without the histogram's `le`. */
export function withoutLe(labels: Record<string, string | number>): Record<string, string | number> {
  return Object.fromEntries(Object.entries(labels).filter(([key]) => key !== 'le'));
}

/**
 * @example
 * histogramPoints(metric); // [{ labels: { queue: 'q' }, boundaries: [0.1, 1], counts: [3, 1, 0], sum: 1.2, count: 4 }]
 */
export function histogramPoints(metric: PromMetric): HistogramPoint[] {
  const series = new Map<string, { labels: Record<string, string | number>; buckets: Array<[number, number]>; sum: number; count: number }>();
  for (const v of metric.values) {
    const labels = withoutLe(v.labels);
    const key = JSON.stringify(Object.entries(labels).sort());
    let s = series.get(key);
    if (!s) series.set(key, (s = { labels, buckets: [], sum: 0, count: 0 }));
    if (v.metricName?.endsWith('_bucket')) s.buckets.push([v.labels.le === '+Inf' ? Infinity : Number(v.labels.le), v.value]);
    else if (v.metricName?.endsWith('_sum')) s.sum = v.value;
    else if (v.metricName?.endsWith('_count')) s.count = v.value;
  }
  return [...series.values()].map((s) => {
    const sorted = s.buckets.sort((a, b) => a[0] - b[0]);
    const boundaries = sorted.filter(([le]) => le !== Infinity).map(([le]) => le);
    const counts = sorted.map(([, c], i) => c - (i > 0 ? sorted[i - 1]![1] : 0));
    if (counts.length === boundaries.length) counts.push(0);
    return { labels: s.labels, boundaries, counts, sum: s.sum, count: s.count };
  });
}
