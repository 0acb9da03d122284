/**
 * `drover doctor`: check a deployment before and after it goes live
 * (pass/warn/fail, each with a fix); with `--url`, check a running node's
 * health instead (readiness, queues, quarantine, breakers, recent errors,
 * backups, the audit export).
 */
import { InvalidArgumentError, type Command } from 'commander';
import { formatReport } from '../../ops/doctor/check.js';
import { runDoctor } from '../../ops/doctor/doctor.js';
import { DEFAULT_THRESHOLDS, liveExitCode, runLiveDoctor } from '../../ops/doctor/live.js';
import { DEFAULT_CONFIG_PATH, loadConfigModule } from '../load-config.js';

interface DoctorOptions {
  config: string;
  json?: boolean;
  behindTlsProxy?: boolean;
  url?: string;
  metricsUrl?: string;
  window: number;
  maxOldestAge: number;
  errorRatio: number;
}

/** A usage error (exit 64), not a degraded node (exit 1). */
const positive = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`expected a number >= 0, got "${value}"`);
  return n;
};

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description(
      'check config, store, migrations, keys, listen address, metrics, data dir, backups and clock; exit 1 on any failure. ' +
        'With --url: check a running node (readiness, queues, quarantine, breakers, recent errors, backup age, audit export); exit 0 healthy, 1 degraded, 2 unhealthy, 3 unreachable, 64 a usage error',
    )
    .option('-c, --config <file>', 'config module', DEFAULT_CONFIG_PATH)
    .option('--json', 'print JSON: {ok, checks: [{id, status, detail, fix}]} (with --url also {exitCode})')
    .option('--behind-tls-proxy', 'a TLS-terminating proxy fronts the API: a public listen address is fine')
    .option('--url <url>', 'check the running node at this URL (DROVER_API_KEY: a key with the read scope)')
    .option('--metrics-url <url>', 'with --url: where /metrics is served when on its own port (metrics.port)')
    .option('--window <seconds>', 'with --url: seconds between the two scrapes recent error rates come from', positive, 5)
    .option('--max-oldest-age <seconds>', 'with --url: oldest due job age that fails (warns from half of it)', positive, DEFAULT_THRESHOLDS.oldestAgeSeconds)
    .option('--error-ratio <ratio>', 'with --url: share of failed API requests or dead jobs in the window that warns', positive, DEFAULT_THRESHOLDS.errorRatio)
    .action(async (opts: DoctorOptions) => {
      if (opts.url) {
        const checks = await runLiveDoctor({
          url: opts.url,
          apiKey: process.env.DROVER_API_KEY || undefined,
          ...(opts.metricsUrl ? { metricsUrl: opts.metricsUrl } : {}),
          windowSeconds: opts.window,
          thresholds: { oldestAgeSeconds: opts.maxOldestAge, errorRatio: opts.errorRatio },
        });
        const exitCode = liveExitCode(checks);
        process.stdout.write(opts.json ? `${JSON.stringify({ ok: exitCode === 0, exitCode, checks }, null, 2)}\n` : formatReport(checks));
        process.exitCode = exitCode;
        return;
      }
      const checks = await runDoctor({ loadConfig: () => loadConfigModule(opts.config), behindTlsProxy: opts.behindTlsProxy === true });
      const ok = !checks.some((c) => c.status === 'fail');
      process.stdout.write(opts.json ? `${JSON.stringify({ ok, checks }, null, 2)}\n` : formatReport(checks));
      if (!ok) process.exitCode = 1;
    });
}
