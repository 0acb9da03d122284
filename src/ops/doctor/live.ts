/**
 * `drover doctor --url URL`: a running node's health, as an operator's first
 * look (the runbook's health-check step) and as a script's gate. Reads
 * `/health/ready`, `/v1/status`, `/v1/queues` (an API key with the `read`
 * scope) and two scrapes of `/metrics` a window apart (recent error rates).
 * Every check is pass, warn, fail or skip, with a fix; the exit code sums it
 * up (see `LIVE_EXIT`).
 */
import { toError } from '../../core/errors.js';
import { fail, pass, skip, warn, type CheckResult } from './check.js';
import { BACKUP_MAX_AGE_MS } from './checks.js';
import { parseSamples, total, type Sample } from './exposition.js';

/** Exit codes of `drover doctor --url`, for scripts. */
export const LIVE_EXIT = { healthy: 0, degraded: 1, unhealthy: 2, unreachable: 3 } as const;

export interface LiveThresholds {
  /** Oldest due job: warn past half of it, fail past it. Default 600 s (the DroverQueueOldestJobOld alert). */
  oldestAgeSeconds: number;
  /** Depth over maxDepth: warn from this ratio, fail at 1. Default 0.8 (DroverQueueNearFull). */
  depthRatio: number;
  /** Share of API requests answered 5xx, or of finished jobs gone dead, within the window: warn above. Default 0.05. */
  errorRatio: number;
}

export const DEFAULT_THRESHOLDS: LiveThresholds = { oldestAgeSeconds: 600, depthRatio: 0.8, errorRatio: 0.05 };

export interface LiveDoctorOptions {
  url: string;
  apiKey: string | undefined;
  /** Where /metrics is served, when on its own port; default `url`. */
  metricsUrl?: string;
  /** Seconds between the two scrapes the error rates are computed from. Default 5. */
  windowSeconds?: number;
  thresholds?: Partial<LiveThresholds>;
  clock?: () => number;
  /** Per request. Default 5 s. */
  timeoutMs?: number;
}

interface QueueView {
  name: string;
  maxDepth: number;
  paused: boolean;
  counts: Record<string, number>;
  oldestQueuedAgeSeconds: number;
}

interface StatusView {
  state: string;
  version: string;
  nodeId: string;
  quarantinedHandlers: string[];
  openBreakers: string[];
  auditExport: { state: 'ok' | 'refused'; exportedSeq: number; problem: string | null } | null;
}

/** The overall outcome of a set of checks as `LIVE_EXIT` names it. */
export function liveExitCode(results: readonly CheckResult[]): number {
  if (results.some((r) => r.id === 'reach' && r.status === 'fail')) return LIVE_EXIT.unreachable;
  if (results.some((r) => r.status === 'fail')) return LIVE_EXIT.unhealthy;
  if (results.some((r) => r.status === 'warn')) return LIVE_EXIT.degraded;
  return LIVE_EXIT.healthy;
}

/**
 * @example
 * const results = await runLiveDoctor({ url: 'http://127.0.0.1:7070', apiKey: process.env.DROVER_API_KEY });
 * process.exitCode = liveExitCode(results);
 */
export async function runLiveDoctor(options: LiveDoctorOptions): Promise<CheckResult[]> {
  const base = options.url.replace(/\/$/, '');
  const metricsBase = (options.metricsUrl ?? base).replace(/\/$/, '');
  const limits = { ...DEFAULT_THRESHOLDS, ...options.thresholds };
  const clock = options.clock ?? Date.now;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const get = async (url: string, auth: boolean): Promise<{ status: number; text: string }> => {
    const response = await fetch(url, { headers: auth && options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}, signal: AbortSignal.timeout(timeoutMs) });
    return { status: response.status, text: await response.text() };
  };

  let ready: { status: number; text: string };
  try {
    ready = await get(`${base}/health/ready`, false);
  } catch (error) {
    return [fail('reach', `no node answers at ${base} (${toError(error).message})`, 'check the URL (--url or DROVER_URL), that the node runs (`systemctl status drover`) and the network path')];
  }
  const results: CheckResult[] = [ready.status === 200 ? pass('ready', '/health/ready answers 200') : fail('ready', `/health/ready answers ${ready.status}: ${ready.text.slice(0, 300)}`, 'the body names the failed check (store, migrations, lifecycle); see docs/operations.md#alert-drovernotready')];

  if (!options.apiKey) {
    results.push(skip('api', 'no API key: status, queues and handlers not checked', 'set DROVER_API_KEY to a key with the read scope'));
  } else {
    const [status, queues] = await Promise.all([readJson<StatusView>(get, `${base}/v1/status`), readJson<{ queues: QueueView[] }>(get, `${base}/v1/queues`)]);
    if ('error' in status) results.push(fail('api', status.error, 'check DROVER_API_KEY (a key with the read scope) and the node'));
    else results.push(...statusChecks(status.value));
    if ('error' in queues) results.push(fail('queues', queues.error, 'check the node and its store'));
    else results.push(...queueChecks(queues.value.queues, limits));
  }
  results.push(...(await metricChecks(get, metricsBase, options.windowSeconds ?? 5, limits, clock)));
  return results;
}

async function readJson<T>(get: (url: string, auth: boolean) => Promise<{ status: number; text: string }>, url: string): Promise<{ value: T } | { error: string }> {
  try {
    const answer = await get(url, true);
    if (answer.status !== 200) return { error: `${url} answered ${answer.status}: ${answer.text.slice(0, 200)}` };
    return { value: JSON.parse(answer.text) as T };
  } catch (error) {
    return { error: `${url}: ${toError(error).message}` };
  }
}

function statusChecks(status: StatusView): CheckResult[] {
  const results: CheckResult[] = [status.state === 'running' ? pass('lifecycle', `${status.nodeId} running Drover ${status.version}`) : warn('lifecycle', `${status.nodeId} is ${status.state}`, 'a draining node is shutting down; wait for it to exit, or see docs/operations.md#starting-and-stopping')];
  results.push(
    status.quarantinedHandlers.length > 0
      ? fail('quarantine', `quarantined: ${status.quarantinedHandlers.join(', ')}`, `fix the cause, then \`drover handlers reset ${status.quarantinedHandlers[0]}\` (docs/operations.md#alert-droverhandlerquarantined)`)
      : pass('quarantine', 'no handler quarantined'),
  );
  results.push(
    status.openBreakers.length > 0
      ? warn('breakers', `breakers not closed: ${status.openBreakers.join(', ')}`, 'their jobs wait for the dependency they call; see docs/operations.md#alert-droverbreakeropen')
      : pass('breakers', 'every circuit breaker closed'),
  );
  const exported = status.auditExport;
  if (!exported) results.push(skip('audit', 'audit export off', 'set audit.exportDir to keep an off-store copy of the audit trail'));
  else if (exported.state === 'refused') results.push(fail('audit', `audit export refused: ${exported.problem ?? 'records removed from the store'}`, 'treat it as a possible intrusion: docs/operations.md#alert-droverauditexportrefused'));
  else results.push(pass('audit', `audit chain export ok (${exported.exportedSeq} records exported)`));
  return results;
}

function queueChecks(queues: readonly QueueView[], limits: LiveThresholds): CheckResult[] {
  const results: CheckResult[] = [];
  for (const queue of queues) {
    const depth = (queue.counts.scheduled ?? 0) + (queue.counts.queued ?? 0) + (queue.counts.running ?? 0);
    const ratio = queue.maxDepth > 0 ? depth / queue.maxDepth : 0;
    const age = Math.round(queue.oldestQueuedAgeSeconds);
    const detail = `queue ${queue.name}: ${depth}/${queue.maxDepth} unfinished, oldest due job ${age} s${queue.paused ? ', paused' : ''}`;
    const id = `queue:${queue.name}`;
    if (ratio >= 1) results.push(fail(id, detail, 'intake refuses new work (429): add capacity or find what stalls the handlers (docs/operations.md#alert-droverqueuenearfull)'));
    else if (age > limits.oldestAgeSeconds) results.push(fail(id, detail, 'work is not getting through: docs/operations.md#alert-droverqueueoldestjobold'));
    else if (queue.paused) results.push(warn(id, detail, `resume it when intended: \`drover queues resume ${queue.name}\``));
    else if (ratio >= limits.depthRatio || age > limits.oldestAgeSeconds / 2) results.push(warn(id, detail, 'backlog growing: docs/operations.md#alert-droverqueuenearfull'));
    else results.push(pass(id, detail));
  }
  return results;
}

async function metricChecks(
  get: (url: string, auth: boolean) => Promise<{ status: number; text: string }>,
  base: string,
  windowSeconds: number,
  limits: LiveThresholds,
  clock: () => number,
): Promise<CheckResult[]> {
  const scrape = async (): Promise<Sample[] | string> => {
    try {
      const answer = await get(`${base}/metrics`, false);
      return answer.status === 200 ? parseSamples(answer.text) : `${base}/metrics answered ${answer.status}`;
    } catch (error) {
      return `${base}/metrics: ${toError(error).message}`;
    }
  };
  const first = await scrape();
  if (typeof first === 'string') return [warn('metrics', first, 'point --metrics-url at where /metrics is served (metrics.port)')];
  await new Promise((resolve) => setTimeout(resolve, windowSeconds * 1000));
  const second = await scrape();
  if (typeof second === 'string') return [warn('metrics', second, 'point --metrics-url at where /metrics is served (metrics.port)')];

  const results: CheckResult[] = [];
  const delta = (name: string, where?: (l: Record<string, string>) => boolean) => Math.max(0, (total(second, name, where) ?? 0) - (total(first, name, where) ?? 0));
  const api = (l: Record<string, string>) => !/^\/metrics$|^\/health\//.test(l.route ?? '');
  const requests = delta('drover_http_requests_total', api);
  const errors5xx = delta('drover_http_requests_total', (l) => api(l) && (l.status ?? '').startsWith('5'));
  const finished = delta('drover_jobs_completed_total', (l) => l.outcome === 'succeeded' || l.outcome === 'dead');
  const dead = delta('drover_jobs_completed_total', (l) => l.outcome === 'dead');
  const storeFaults = delta('drover_errors_total', (l) => l.layer === 'store');
  const window = `in ${windowSeconds} s`;
  const ratioCheck = (id: string, bad: number, all: number, what: string, fix: string): CheckResult => {
    if (all === 0) return pass(id, `no ${what} ${window}`);
    const ratio = bad / all;
    const detail = `${bad} of ${all} ${what} failed ${window} (${(ratio * 100).toFixed(1)}%)`;
    return ratio > limits.errorRatio ? warn(id, detail, fix) : pass(id, detail);
  };
  results.push(ratioCheck('api-errors', errors5xx, requests, 'API requests', 'the node\'s error log names the cause: docs/operations.md#alert-droverhttp5xxratiohigh'));
  results.push(ratioCheck('job-errors', dead, finished, 'finished jobs', '`drover jobs list --state dead` shows which handlers and why'));
  results.push(storeFaults > 0 ? warn('store-errors', `${storeFaults} store faults ${window}`, 'docs/operations.md#alert-droverstoreerrors') : pass('store-errors', `no store faults ${window}`));
  const up = total(second, 'drover_store_up');
  if (up !== null && up < 1) results.push(fail('store', 'the node cannot reach its store (drover_store_up 0)', 'docs/operations.md#the-store-is-unreachable'));

  const lastBackup = total(second, 'drover_backup_last_success_timestamp_seconds');
  if (lastBackup === null || lastBackup <= 0) results.push(skip('backup', 'no backup taken yet', 'take one (`drover backup create`) and schedule them (docs/operations.md#backup-and-restore)'));
  else {
    const ageMs = clock() - lastBackup * 1000;
    const hours = (ageMs / 3_600_000).toFixed(1);
    results.push(ageMs > BACKUP_MAX_AGE_MS ? warn('backup', `last backup ${hours} h ago`, 'docs/operations.md#alert-droverbackuptooold') : pass('backup', `last backup ${hours} h ago`));
  }
  const lag = total(second, 'drover_audit_export_lag_records');
  if (lag !== null && lag > 0) results.push(pass('audit-lag', `${lag} audit records wait for the next export`));
  return results;
}
