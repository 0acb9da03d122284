/**
 * The shipped alert rules (ops-assets/prometheus/alerts.yml): promtool checks
 * and unit-tests them (every alert fires in one case and stays silent in
 * another), every alert carries what an on-call human needs, every runbook
 * link lands on a section of docs/operations.md, and every `drover_` metric
 * the rules and the dashboard use is one a real node exports (a histogram
 * exports `_bucket`, `_sum` and `_count` series).
 *
 * Without promtool the promtool tests skip locally; in CI (`CI` set) they fail,
 * because `.ci/run` installs it (Debian's `prometheus` package).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { anchorsOf, withTool } from './ops-helpers.js';

const root = (path: string): string => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const RULES = root('ops-assets/prometheus/alerts.yml');
const RULE_TESTS = [root('ops-assets/prometheus/alerts.test.yml'), root('ops-assets/prometheus/alerts-long.test.yml')];
const GRAFANA = root('ops-assets/grafana');
/** The shipped dashboards: jobs and queues (drover.json), SLI, storage, cluster. */
const DASHBOARDS = ['drover.json', 'drover-sli.json', 'drover-storage.json', 'drover-cluster.json'];
const RUNBOOK = root('docs/operations.md');

/**
 * Metrics the rules use that no node exports yet, each with the reason. A name
 * here that a node does export is fine (the list only has to shrink).
 */
const PENDING: Record<string, string> = {
  drover_backup_last_success_timestamp_seconds: 'the backup subsystem records the time in the store (src/ops/backup/create.ts) but no gauge is registered yet',
  drover_backup_verify_success: 'written by the verify timer for node_exporter\'s textfile collector (ops-assets/systemd/drover-backup-verify.sh; test/ops/deploy-samples.test.ts)',
  drover_backup_verify_timestamp_seconds: 'written by the verify timer for node_exporter\'s textfile collector (ops-assets/systemd/drover-backup-verify.sh; test/ops/deploy-samples.test.ts)',
  drover_store_pool_connections: 'PostgreSQL only (this node runs on SQLite); test/obs/ops-metrics.test.ts reads the pool from a PostgreSQL node',
  drover_store_pool_max_connections: 'PostgreSQL only (this node runs on SQLite); test/obs/ops-metrics.test.ts reads it from a PostgreSQL node',
  drover_store_connection_errors_total: 'PostgreSQL only (discarded pooled connections)',
  drover_store_notify_lag_seconds_bucket: 'PostgreSQL only (LISTEN/NOTIFY between nodes); test/obs/ops-metrics.test.ts reads it from a PostgreSQL node',
  drover_store_notify_lag_seconds_count: 'PostgreSQL only (LISTEN/NOTIFY between nodes); test/obs/ops-metrics.test.ts reads it from a PostgreSQL node',
  drover_store_pool_waiting_requests: 'PostgreSQL only (this node runs on SQLite); test/obs/ops-metrics.test.ts reads it from a PostgreSQL node',
  drover_tls_certificate_expiry_timestamp_seconds: 'only with built-in TLS (server.tls); test/obs/ops-metrics.test.ts starts a TLS node and reads it',
};

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function rules(): Rule[] {
  const doc = parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> };
  return doc.groups.flatMap((g) => g.rules);
}

/** Every `drover_…` metric name in a PromQL expression (recording rules are `drover:…`). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\bdrover_[a-z0-9_]+/g)].map((m) => m[0]);
}

/** The PromQL expressions of every Grafana dashboard (every panel target), with the file each is in. */
function dashboardExprs(): string[] {
  return DASHBOARDS.flatMap((file) => exprsOf(join(GRAFANA, file)));
}

function exprsOf(file: string): string[] {
  if (!existsSync(file)) return [];
  const exprs: string[] = [];
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) {
        if ((key === 'expr' || key === 'query') && typeof inner === 'string') exprs.push(inner);
        else walk(inner);
      }
    }
  };
  walk(JSON.parse(readFileSync(file, 'utf8')));
  return exprs;
}

/** A dashboard query as Prometheus sees it once Grafana has filled in its variables. */
function asPromQL(expr: string): string {
  // A variable's `label_values(selector, label)` is Grafana's, not PromQL: check its selector.
  return expr.replace(/^label_values\((.*),\s*\w+\)$/, '$1').replace(/\$__rate_interval/g, '5m').replace(/\$job/g, 'drover').replace(/\$instance/g, '.*');
}

describe('alert rules', () => {
  withTool('promtool')('pass `promtool check rules`', () => {
    const out = execFileSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
    expect(out).toMatch(/SUCCESS/);
  });

  withTool('promtool')('pass their `promtool test rules` unit tests', { timeout: 120_000 }, () => {
    const result = spawnSync('promtool', ['test', 'rules', ...RULE_TESTS], { encoding: 'utf8' });
    expect(result.stdout + result.stderr).not.toMatch(/FAILED/);
    expect(result.status).toBe(0);
  });

  it('are each tested firing and not firing', () => {
    const tests = RULE_TESTS.map((file) => readFileSync(file, 'utf8')).join('\n');
    const doc = RULE_TESTS.flatMap((file) => (parse(readFileSync(file, 'utf8')) as { tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }> }> }).tests);
    const cases = doc.flatMap((t) => t.alert_rule_test ?? []);
    for (const rule of rules().filter((r) => r.alert)) {
      const mine = cases.filter((c) => c.alertname === rule.alert);
      expect(mine.some((c) => c.exp_alerts.length > 0), `${rule.alert} is never tested firing`).toBe(true);
      expect(mine.some((c) => c.exp_alerts.length === 0), `${rule.alert} is never tested silent`).toBe(true);
    }
    expect(tests).toContain('alertname:');
  });

  it('carry a severity, a summary, a description with the value and a runbook link that exists', () => {
    const anchors = anchorsOf(readFileSync(RUNBOOK, 'utf8'));
    const alerts = rules().filter((r) => r.alert);
    expect(alerts.length).toBeGreaterThanOrEqual(16);
    for (const rule of alerts) {
      expect(['page', 'ticket', 'info'], `${rule.alert} severity`).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary, `${rule.alert} summary`).toBeTruthy();
      expect(rule.annotations?.description, `${rule.alert} description`).toContain('$value');
      const url = rule.annotations?.runbook_url ?? '';
      const match = /^docs\/operations\.md#(.+)$/.exec(url);
      expect(match, `${rule.alert} runbook_url ${url}`).not.toBeNull();
      expect(anchors.has(match![1]!), `${rule.alert}: docs/operations.md has no section #${match![1]}`).toBe(true);
    }
    // Page only where someone must act now (OPERATIONS.md); audit records removed from the store is a possible intrusion; a full store refuses all intake.
    const pages = alerts.filter((r) => r.labels?.severity === 'page').map((r) => r.alert);
    expect(pages.sort()).toEqual(['DroverApiErrorBudgetBurn', 'DroverAuditExportRefused', 'DroverDown', 'DroverHandlerQuarantined', 'DroverJobErrorBudgetBurn', 'DroverQueueOldestJobOld', 'DroverStoreCorrupt', 'DroverStoreFull', 'DroverStoreUnreachable']);
    // The three tiers are all in use.
    expect(new Set(alerts.map((r) => r.labels?.severity))).toEqual(new Set(['page', 'ticket', 'info']));
  });

  it('cover every alert the operations issue asks for', () => {
    const names = new Set(rules().map((r) => r.alert).filter(Boolean));
    for (const name of [
      'DroverDown',
      'DroverNotReady',
      'DroverHandlerQuarantined',
      'DroverBreakerOpen',
      'DroverJobFailureRatioHigh',
      'DroverQueueOldestJobOld',
      'DroverQueueNearFull',
      'DroverLeaseExpirations',
      'DroverDispatchLatencyHigh',
      'DroverHttp5xxRatioHigh',
      'DroverApiErrorBudgetBurn',
      'DroverApiErrorBudgetBurnSlow',
      'DroverJobErrorBudgetBurn',
      'DroverJobErrorBudgetBurnSlow',
      'DroverStoreLatencyHigh',
      'DroverDiskAlmostFull',
      'DroverBackupTooOld',
      // Process, store, cluster, backup verification, audit export and TLS (issue 23).
      'DroverMemoryNearLimit',
      'DroverHeapNearLimit',
      'DroverCpuSaturated',
      'DroverEventLoopLagHigh',
      'DroverStoreErrors',
      'DroverStoreCorrupt',
      'DroverSqliteWalLarge',
      'DroverSqliteCheckpointStalled',
      'DroverSqliteCommitSlow',
      'DroverPostgresPoolExhausted',
      'DroverNodeDeclaredDead',
      'DroverBackupVerifyFailed',
      'DroverBackupNotVerified',
      'DroverAuditExportBehind',
      'DroverAuditExportSuperseded',
      'DroverTlsCertificateExpiresSoon',
      'DroverTlsCertificateExpiring',
      // Backpressure visibility (issue 20 item 6).
      'DroverQueueBackpressureSustained',
      'DroverLeaseConflicts',
      'DroverRecoverySlow',
    ]) {
      expect(names.has(name), name).toBe(true);
    }
  });
});

describe('dashboards', () => {
  const parsed = DASHBOARDS.map((file) => ({ file, json: JSON.parse(readFileSync(join(GRAFANA, file), 'utf8')) as { uid: string; title: string; panels: Array<{ type: string; title: string; targets?: Array<{ expr?: string }> }> } }));

  it('are four, with distinct uids, and every panel but a row has a query', () => {
    expect(new Set(parsed.map((d) => d.json.uid)).size).toBe(DASHBOARDS.length);
    for (const { file, json } of parsed) {
      for (const panel of json.panels.filter((p) => p.type !== 'row')) {
        expect(panel.targets?.length, `${file}: ${panel.title}`).toBeGreaterThan(0);
        for (const target of panel.targets ?? []) expect(target.expr, `${file}: ${panel.title}`).toBeTruthy();
      }
    }
    // What issue 23 asks each to show.
    const titles = (uid: string) => parsed.find((d) => d.json.uid === uid)!.json.panels.map((p) => p.title).join('\n');
    for (const what of [/availability/i, /latency/i, /burn rate/i, /error budget left/i]) expect(titles('drover-sli')).toMatch(what);
    expect(titles('drover-storage')).toMatch(/fsync[\s\S]*WAL[\s\S]*Checkpoint[\s\S]*Pool[\s\S]*growth[\s\S]*pruned[\s\S]*last prune/i);
    expect(titles('drover-cluster')).toMatch(/Recovery latency[\s\S]*Lease conflicts[\s\S]*NOTIFY lag/i);
    expect(titles('drover-cluster')).toMatch(/Nodes alive[\s\S]*per node[\s\S]*recovered/i);
  });

  it('use only recording rules that alerts.yml records', () => {
    const recorded = new Set(rules().map((r) => r.record).filter(Boolean));
    for (const expr of dashboardExprs()) for (const [name] of expr.matchAll(/\bdrover:[a-z0-9_:]+/g)) expect(recorded.has(name), name).toBe(true);
  });

  withTool('promtool')('hold queries that are valid PromQL (`promtool check rules` parses each one)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-dash-'));
    try {
      const file = join(dir, 'dashboards.yml');
      const exprs = dashboardExprs();
      writeFileSync(file, stringify({ groups: [{ name: 'dashboards', rules: exprs.map((expr, i) => ({ record: `dashboard:query_${i}`, expr: asPromQL(expr) })) }] }));
      const result = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
      expect(result.stdout + result.stderr, result.stderr).toMatch(new RegExp(`SUCCESS: ${exprs.length} rules found`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('metrics used by the rules and the dashboard', () => {
  let node: TestNode | null = null;
  afterAll(async () => {
    await node?.close();
  });

  it('are all exported by a running node', async () => {
    node = await startTestNode({
      handlers: [{ name: 'probe', on: 'probe.*', queue: 'work', run: async () => ({ ok: true }) }],
      queues: { work: { maxDepth: 50 } },
    });
    // Traffic first, so every histogram has observed something.
    expect((await node.request('POST', '/v1/events', { name: 'probe.run', data: {} })).status).toBe(202);
    const scrape = await node.app.inject({ method: 'GET', url: '/metrics' });
    expect(scrape.statusCode).toBe(200);
    const exported = new Set<string>();
    for (const line of scrape.body.split('\n')) {
      const name = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line)?.[1];
      if (name && !line.startsWith('#')) exported.add(name);
    }
    expect(exported.has('drover_queue_max_depth')).toBe(true);
    expect(scrape.body).toContain('drover_queue_max_depth{queue="work"} 50');

    const used = new Map<string, string>();
    for (const rule of rules()) for (const name of metricNames(rule.expr)) used.set(name, `alerts.yml ${rule.alert ?? rule.record}`);
    for (const file of DASHBOARDS) for (const expr of exprsOf(join(GRAFANA, file))) for (const name of metricNames(expr)) used.set(name, `grafana/${file}`);
    expect(used.size).toBeGreaterThan(10);

    const missing = [...used].filter(([name]) => !exported.has(name));
    const unexplained = missing.filter(([name]) => !(name in PENDING));
    expect(unexplained.map(([name, where]) => `${name} (${where})`)).toEqual([]);
  });
});
