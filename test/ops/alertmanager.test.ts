/**
 * The example Alertmanager config (ops-assets/alertmanager/): amtool checks it,
 * routes each severity to its receiver, and renders the shipped message
 * templates with real alert data (a runbook path becomes a link, placeholders
 * are marked as such). Without amtool these skip locally and fail in CI.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { withTool } from './ops-helpers.js';

const DIR = fileURLToPath(new URL('../../ops-assets/alertmanager/', import.meta.url));
const CONFIG = join(DIR, 'alertmanager.yml');
const scratch = mkdtempSync(join(tmpdir(), 'drover-am-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function amtool(args: string[]): string {
  return execFileSync('amtool', args, { cwd: DIR, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function render(text: string, data: unknown): string {
  const file = join(scratch, `data-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(data));
  return amtool(['template', 'render', `--template.glob=${join(DIR, 'templates/*.tmpl')}`, `--template.text=${text}`, `--template.data=${file}`]);
}

const alert = (status: 'firing' | 'resolved', labels: Record<string, string>, annotations: Record<string, string>) => ({
  status,
  labels,
  annotations,
  startsAt: '2026-12-04T22:00:00Z',
  endsAt: status === 'firing' ? '0001-01-01T00:00:00Z' : '2026-12-04T22:30:00Z',
  generatorURL: 'http://prometheus:9090/graph',
  fingerprint: Math.random().toString(16).slice(2),
});

const firing = {
  receiver: 'page',
  status: 'firing',
  alerts: [
    alert('firing', { alertname: 'DroverQueueOldestJobOld', severity: 'page', queue: 'emails', instance: 'node-1:7070' }, {
      summary: 'Queue emails has a job waiting for 12m',
      description: 'The oldest due job in queue emails has waited 12m (threshold 10 minutes).',
      runbook_url: 'docs/operations.md#alert-droverqueueoldestjobold',
    }),
    alert('firing', { alertname: 'DroverQueueOldestJobOld', severity: 'page', queue: 'reports', instance: 'node-1:7070' }, {
      summary: 'Queue reports has a job waiting for 11m',
      description: 'The oldest due job in queue reports has waited 11m.',
      runbook_url: 'https://runbooks.example.org/drover#old',
    }),
  ],
  groupLabels: { alertname: 'DroverQueueOldestJobOld' },
  commonLabels: { alertname: 'DroverQueueOldestJobOld', severity: 'page', instance: 'node-1:7070' },
  commonAnnotations: {},
  externalURL: 'http://alertmanager:9093',
};

describe('example Alertmanager config', () => {
  withTool('amtool')('passes `amtool check-config` with its templates', () => {
    const out = amtool(['check-config', CONFIG]);
    expect(out).toMatch(/SUCCESS/);
    expect(out).toMatch(/1 templates/);
  });

  withTool('amtool')('routes page, ticket and info to their own receivers', () => {
    const route = (...labels: string[]) => amtool(['config', 'routes', 'test', `--config.file=${CONFIG}`, ...labels]).trim();
    expect(route('alertname=DroverDown', 'severity=page')).toBe('page');
    expect(route('alertname=DroverBreakerOpen', 'severity=ticket')).toBe('ticket');
    expect(route('alertname=DroverHandlerRestarting', 'severity=info')).toBe('info');
    expect(route('alertname=Other')).toBe('ticket');
  });

  it('marks every value an operator must replace, and keeps secrets out of the messages', () => {
    const text = readFileSync(CONFIG, 'utf8');
    const am = parse(text) as { receivers: Array<{ name: string; pagerduty_configs?: Array<{ routing_key: string }>; slack_configs?: unknown[] }>; templates: string[] };
    expect(am.templates).toEqual(['templates/*.tmpl']);
    const page = am.receivers.find((r) => r.name === 'page')!;
    expect(page.pagerduty_configs?.[0]?.routing_key).toMatch(/PLACEHOLDER/);
    expect(am.receivers.find((r) => r.name === 'ticket')?.slack_configs?.length).toBeGreaterThan(0);
    expect(text).toMatch(/slack_api_url: \S*PLACEHOLDER/);
    expect(readFileSync(join(DIR, 'templates/drover.tmpl'), 'utf8')).toMatch(/PLACEHOLDER: where your copy of Drover's docs is published/);
  });

  withTool('amtool')('renders a firing group for Slack: summary, labels, description and a runbook link per alert', () => {
    const title = render('{{ template "drover.slack.title" . }}', firing);
    expect(title.trim()).toBe('[FIRING:2] DroverQueueOldestJobOld (page)');
    const text = render('{{ template "drover.slack.text" . }}', firing);
    expect(text).toContain('*Queue emails has a job waiting for 12m*');
    expect(text).toContain('node: node-1:7070  queue: emails  since: 2026-12-04 22:00 UTC');
    // A repository path is prefixed with the docs base; an absolute URL is kept.
    expect(text).toContain('runbook: https://docs.example.invalid/drover/docs/operations.md#alert-droverqueueoldestjobold');
    expect(text).toContain('runbook: https://runbooks.example.org/drover#old');
  });

  withTool('amtool')('renders a PagerDuty description and a resolved notice', () => {
    expect(render('{{ template "drover.pagerduty.description" . }}', firing).trim()).toBe(
      '[FIRING:2] DroverQueueOldestJobOld (page): Queue emails has a job waiting for 12m (2 alerts)',
    );
    const resolved = { ...firing, status: 'resolved', alerts: [{ ...firing.alerts[0]!, status: 'resolved', endsAt: '2026-12-04T22:30:00Z' }] };
    expect(render('{{ template "drover.slack.title" . }}', resolved).trim()).toBe('[RESOLVED] DroverQueueOldestJobOld (page)');
    expect(render('{{ template "drover.slack.text" . }}', resolved)).toContain('(resolved)');
  });
});
