/**
 * `drover start` parses with a tree of the start command alone (cli/root-command.ts, issue 24 worker
 * RSS: the other commands' modules stay unloaded in a running node; test/e2e/lazy-modules.test.ts
 * checks that). The start command there must be the very one the full tree has, and both trees must
 * still answer help, version and usage errors as before.
 */
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.js';
import { buildStartProgram } from '../../src/cli/root-command.js';
import { drover } from '../ops/cli.js';

const startOf = (program: ReturnType<typeof buildProgram>) => program.commands.find((c) => c.name() === 'start');

describe('the start-only command tree', () => {
  it('holds the same start command, options and all, as the full tree', () => {
    const full = startOf(buildProgram());
    const alone = startOf(buildStartProgram());
    expect(buildStartProgram().commands.map((c) => c.name())).toEqual(['start']);
    expect(alone?.description()).toBe(full?.description());
    const options = (c: typeof full) => c?.options.map((o) => [o.flags, o.description, o.defaultValue]);
    expect(options(alone)).toEqual(options(full));
    expect(options(alone)?.length).toBeGreaterThan(5);
  });

  it('answers help, version and usage errors from bin/drover as the full tree does', async () => {
    const [startHelp, bad, rootHelp, version] = await Promise.all([
      drover(['start', '--help'], {}),
      drover(['start', '--no-such-option'], {}),
      drover(['--help'], {}),
      drover(['--version'], {}),
    ]);
    expect(startHelp.code).toBe(0);
    expect(startHelp.stdout).toContain('Usage: drover start [options]');
    expect(startHelp.stdout).toContain('--worker-only');
    // A usage error: exit 64, with the start command's usage after it (showHelpAfterError).
    expect(bad.code).toBe(64);
    expect(bad.stderr).toContain("unknown option '--no-such-option'");
    expect(bad.stderr).toContain('Usage: drover start [options]');
    expect(rootHelp.code).toBe(0);
    for (const command of ['start', 'migrate', 'doctor', 'backup']) expect(rootHelp.stdout).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
