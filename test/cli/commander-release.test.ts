/**
 * `drover start` drops commander once argv is parsed and the node runs
 * (cli/commander.ts, issue 24 worker RSS: ~0.24 MiB of a worker's live heap).
 * The check runs in a child process with `--expose-gc`, on the built modules,
 * through main.ts's own path: the start tree is parsed, commander leaves the
 * require cache and is collected, and loads anew when asked again.
 */
import { describe, expect, it } from 'vitest';
import { dist, releaseAndCollect, runGcChild } from '../helpers/gc-child.js';

describe('releaseCommander', () => {
  it('lets commander and a parsed tree be collected, and a later call loads it anew', () => {
    const script = `
      import { createRequire } from 'node:module';
      const { commander, releaseCommander } = await import(${dist('cli/commander.js')});
      const { parsePort } = await import(${dist('cli/commands/options.js')});
      let port = null;
      const parse = async () => {
        const program = new (commander().Command)().name('drover').exitOverride();
        program.command('start').option('--port <port>', 'port', parsePort).action((opts) => { port = opts.port; });
        await program.parseAsync(['node', 'drover', 'start', '--port', '7071']);
      };
      await parse();
      const ref = new WeakRef(commander().Command);
      ${releaseAndCollect('releaseCommander()', 'commander')}
      const counts = [cached()];
      let again = '';
      try {
        parsePort('70000');
      } catch (error) {
        again = error.constructor.name + ': ' + error.message;
      }
      counts.push(cached());
      process.stdout.write(JSON.stringify({ port, collected: ref.deref() === undefined, counts, again }));`;
    const result = runGcChild<{ port: number; collected: boolean; counts: number[]; again: string }>(script);
    expect(result.port).toBe(7071);
    expect(result.collected).toBe(true);
    expect(result.counts[0]).toBe(0);
    expect(result.counts[1]).toBeGreaterThan(0);
    expect(result.again).toBe('InvalidArgumentError: expected a port number from 0 to 65535');
  });
});
