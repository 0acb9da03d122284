/**
 * One readiness-gate check of `drover doctor`: what it looked at, how it went
 * and, unless it passed, what to do about it.
 */
export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  /** Stable id (`store`, `auth`, …) for `--json` consumers. */
  id: string;
  status: CheckStatus;
  /** What was found, in one line. */
  detail: string;
  /** What to do; set on warn, fail and skip. */
  fix?: string;
}

export const pass = (id: string, detail: string): CheckResult => ({ id, status: 'pass', detail });
export const warn = (id: string, detail: string, fix: string): CheckResult => ({ id, status: 'warn', detail, fix });
export const fail = (id: string, detail: string, fix: string): CheckResult => ({ id, status: 'fail', detail, fix });
export const skip = (id: string, detail: string, fix: string): CheckResult => ({ id, status: 'skip', detail, fix });

/**
 * Human output: one line per check, the fix indented under it, a summary last.
 *
 * @example
 * process.stdout.write(formatReport([pass('config', 'valid')]));
 * // PASS  config      valid
 */
export function formatReport(results: readonly CheckResult[]): string {
  const lines = results.map((r) => `${r.status.toUpperCase().padEnd(5)} ${r.id.padEnd(11)} ${r.detail}${r.fix ? `\n      ${''.padEnd(11)} fix: ${r.fix}` : ''}`);
  const count = (s: CheckResult['status']) => results.filter((r) => r.status === s).length;
  lines.push(`${count('fail')} failed, ${count('warn')} warnings, ${count('pass')} passed, ${count('skip')} skipped`);
  return `${lines.join('\n')}\n`;
}
