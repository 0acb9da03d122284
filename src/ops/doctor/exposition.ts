/**
 * Just enough of the Prometheus text format for `drover doctor --url`: the
 * samples of a scrape, summed by name and label filter. (Tests use their own
 * parser, test/obs/exposition.ts, to check the wire format independently.)
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** @example parseSamples('drover_store_up{engine="sqlite"} 1\n') // [{ name: 'drover_store_up', labels: { engine: 'sqlite' }, value: 1 }] */
export function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = LINE.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(LABEL)) labels[key!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/**
 * The sum of the samples named `name` whose labels pass `where`; null when there are none.
 *
 * @example
 * total(samples, 'drover_http_requests_total', (l) => l.status?.startsWith('5') === true);
 */
export function total(samples: readonly Sample[], name: string, where: (labels: Record<string, string>) => boolean = () => true): number | null {
  let sum: number | null = null;
  for (const s of samples) if (s.name === name && where(s.labels)) sum = (sum ?? 0) + s.value;
  return sum;
}
