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
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { anchorsOf, withTool } from './ops-helpers.js';

const root = (path: string): string => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const RULES = root('ops-assets/prometheus/alerts.yml');
const RULE_TESTS = [root('ops-assets/prometheus/alerts.test.yml'), root('ops-assets/prometheus/alerts-long.test.yml')];
const DASHBOARD = root('ops-assets/grafana/drover.json');
const RUNBOOK = root('docs/operations.md');

/**
 * Metrics the rules use that no node exports yet, each with the reason. A name
 * here that a node does export is fine (the list only has to shrink).
 */
const PENDING: Record<string, string> = {
  drover_backup_last_success_timestamp_seconds: 'the backup subsystem records the time in the store (src/ops/backup/create.ts) but no gauge is registered yet',
  drover_backup_verify_success: 'written by the verify timer for node_exporter\'s textfile collector (ops-assets/systemd/drover-backup-verify.sh; test/ops/deploy-samples.test.ts)',
  drover_backup_verify_timestamp_seconds: 'written by the verify timer for node_exporter\'s textfile collector (ops-assets/systemd/drover-backup-verify.sh; test/ops/deploy-samples.test.ts)',
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

/** The PromQL expressions of the Grafana dashboard (every panel target). */
function dashboardExprs(): string[] {
  if (!existsSync(DASHBOARD)) return [];
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
  walk(JSON.parse(readFileSync(DASHBOARD, 'utf8')));
  return exprs;
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
    ]) {
      expect(names.has(name), name).toBe(true);
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
    const dashboard = dashboardExprs();
    for (const expr of dashboard) for (const name of metricNames(expr)) used.set(name, 'grafana/drover.json');
    expect(used.size).toBeGreaterThan(10);

    const missing = [...used].filter(([name]) => !exported.has(name));
    const unexplained = missing.filter(([name]) => !(name in PENDING));
    expect(unexplained.map(([name, where]) => `${name} (${where})`)).toEqual([]);
  });
});
