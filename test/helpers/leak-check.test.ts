/**
 * The leak check itself: a fixture file that leaves one kind of thing behind
 * (chosen by LEAK) runs under its own vitest with the check as its setup
 * file; the run must fail naming the leftover, and pass when nothing is left
 * or when what was left closes within the settle window.
 */
import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const VITEST = 'node_modules/vitest/vitest.mjs';

function runFixture(leak: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [VITEST, 'run', '--config', 'test/fixtures/leaks/vitest.config.ts', '--root', '.'], { env: { ...process.env, LEAK: leak, DROVER_TEST_ENGINE: '' }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

// Concurrent: each case is a vitest process of its own, and a failing case spends most of its time in the
// check's 2 s settle poll; one after another they waited ~20 s of a 2-core run, side by side ~8 s.
describe.concurrent('the leak check', () => {
  it.each([
    ['timer', /a ref’d setInterval of 60000 ms \(created during "leaves something behind"\) is still active/],
    ['worker', /worker thread \d+ \(created during "leaves something behind"\) has not exited/],
    ['child', /1 x ProcessWrap \(a child process not yet exited\)/],
    ['server', /1 x TCPServerWrap \(a listening server\)/],
  ])('fails a file that leaves a %s behind, naming it', async (leak, message) => {
    const { code, output } = await runFixture(leak);
    expect(code).not.toBe(0);
    expect(output).toMatch(message);
  });

  it.each(['none', 'closed'])('passes a file that leaves nothing (%s) behind once settled', async (leak) => {
    const { code, output } = await runFixture(leak);
    expect(output).not.toMatch(/left running/);
    expect(code).toBe(0);
  });
});
