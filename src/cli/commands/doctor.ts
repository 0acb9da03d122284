/** `drover doctor`: check a deployment before and after it goes live (pass/warn/fail, each with a fix). */
import type { Command } from 'commander';
import { formatReport } from '../../ops/doctor/check.js';
import { runDoctor } from '../../ops/doctor/doctor.js';
import { DEFAULT_CONFIG_PATH, loadConfigModule } from '../load-config.js';

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('check config, store, migrations, keys, listen address, metrics, data dir, backups and clock; exit 1 on any failure')
    .option('-c, --config <file>', 'config module', DEFAULT_CONFIG_PATH)
    .option('--json', 'print JSON: {ok, checks: [{id, status, detail, fix}]}')
    .option('--behind-tls-proxy', 'a TLS-terminating proxy fronts the API: a public listen address is fine')
    .action(async (opts: { config: string; json?: boolean; behindTlsProxy?: boolean }) => {
      const checks = await runDoctor({ loadConfig: () => loadConfigModule(opts.config), behindTlsProxy: opts.behindTlsProxy === true });
      const ok = !checks.some((c) => c.status === 'fail');
      process.stdout.write(opts.json ? `${JSON.stringify({ ok, checks }, null, 2)}\n` : formatReport(checks));
      if (!ok) process.exitCode = 1;
    });
}
