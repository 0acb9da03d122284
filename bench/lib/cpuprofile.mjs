/**
 * Summarise a V8 .cpuprofile (from `node --cpu-prof`): self and total time per
 * function, and self time per area (Drover source file, npm package, Node
 * internals, GC/idle). Times come from the sample time deltas, not hit counts.
 *
 *   node bench/lib/cpuprofile.mjs FILE.cpuprofile [--top 25]
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT_URL = new URL('../../', import.meta.url).href;
const ROOT = fileURLToPath(ROOT_URL);

/** dist/… frames → `src/….ts:line` through the build's source maps (cached per file). */
const maps = new Map();
function sourcePosition(url, line, column) {
  if (!url.startsWith(`${ROOT_URL}dist/`)) return null;
  const file = fileURLToPath(url);
  if (!maps.has(file)) {
    let map = null;
    try {
      if (existsSync(`${file}.map`)) map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')));
    } catch {
      map = null;
    }
    maps.set(file, map);
  }
  const entry = maps.get(file)?.findEntry(line, column);
  if (!entry?.originalSource) return null;
  const source = entry.originalSource.startsWith('file:') ? fileURLToPath(entry.originalSource) : resolve(dirname(file), entry.originalSource);
  return { file: relative(ROOT, source), line: entry.originalLine + 1 };
}

/** Where a frame's code lives: `src/…` for Drover (dist mapped back to src), `pkg:name`, `node:…`, or a V8 pseudo-frame. */
export function areaOf(url, functionName) {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return `pkg:${pkg[1]}`;
  if (url.startsWith('node:')) return url.startsWith('node:internal/') ? `node:${url.slice('node:internal/'.length).split('/')[0]}` : url;
  if (url.startsWith(ROOT_URL)) {
    const rel = url.slice(ROOT_URL.length);
    return rel.startsWith('dist/') ? rel.replace(/^dist\//, 'src/').replace(/\.js$/, '.ts') : rel;
  }
  return url;
}

/** `window` = [fromUs, toUs] on the profile's monotonic clock (process.hrtime µs): only samples inside it count. */
export function summarizeProfile(profile, { window = null } = {}) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const keys = new Map();
  const frameKey = (n) => {
    let key = keys.get(n.id);
    if (key === undefined) {
      const { functionName, url, lineNumber, columnNumber } = n.callFrame;
      const name = functionName || '(anonymous)';
      const mapped = url ? sourcePosition(url, lineNumber, columnNumber) : null;
      key = mapped ? `${mapped.file}:${mapped.line} ${name}` : url ? `${areaOf(url, functionName)}:${lineNumber + 1} ${name}` : name;
      keys.set(n.id, key);
    }
    return key;
  };

  const self = new Map();
  const total = new Map();
  const areas = new Map();
  let all = 0;
  const { samples, timeDeltas } = profile;
  let at = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    at += timeDeltas[i];
    // The delta before sample i+1 is the time spent in sample i.
    const dt = (timeDeltas[i + 1] ?? 0) / 1000; // µs → ms
    if (dt <= 0) continue;
    if (window && (at < window[0] || at > window[1])) continue;
    all += dt;
    const leaf = nodes.get(samples[i]);
    const key = frameKey(leaf);
    self.set(key, (self.get(key) ?? 0) + dt);
    const area = areaOf(leaf.callFrame.url, leaf.callFrame.functionName);
    areas.set(area, (areas.get(area) ?? 0) + dt);
    // Inclusive time: every distinct frame on the stack, once per sample.
    const seen = new Set();
    for (let id = samples[i]; id !== undefined; id = parent.get(id)) {
      const k = frameKey(nodes.get(id));
      if (seen.has(k)) continue;
      seen.add(k);
      total.set(k, (total.get(k) ?? 0) + dt);
    }
  }
  const rank = (map) => [...map.entries()].sort((a, b) => b[1] - a[1]).map(([key, ms]) => ({ key, ms, pct: (100 * ms) / all }));
  return { totalMs: all, self: rank(self), total: rank(total), areas: rank(areas) };
}

export function formatSummary(summary, { top = 25 } = {}) {
  const row = ({ key, ms, pct }) => `${pct.toFixed(1).padStart(5)}%  ${ms.toFixed(0).padStart(6)} ms  ${key}`;
  const busy = summary.self.filter((r) => r.key !== '(idle)').reduce((a, r) => a + r.ms, 0);
  return [
    `profile: ${summary.totalMs.toFixed(0)} ms sampled, ${busy.toFixed(0)} ms not idle`,
    '',
    'self time by area:',
    ...summary.areas.slice(0, top).map(row),
    '',
    'top functions by self time:',
    ...summary.self.slice(0, top).map(row),
    '',
    'top Drover functions by total (inclusive) time:',
    ...summary.total.filter((r) => r.key.startsWith('src/')).slice(0, top).map(row),
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [file, ...rest] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: node bench/lib/cpuprofile.mjs FILE.cpuprofile [--top N]\n');
    process.exit(2);
  }
  const topAt = rest.indexOf('--top');
  const top = topAt >= 0 ? Number(rest[topAt + 1]) : 25;
  process.stdout.write(`${formatSummary(summarizeProfile(JSON.parse(readFileSync(file, 'utf8'))), { top })}\n`);
}
