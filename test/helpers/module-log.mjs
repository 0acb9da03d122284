// `node --import` this file to append every module the process loads (ESM
// loader URLs and CommonJS file names, one a line) to $DROVER_TEST_MODULE_LOG.
// Used by test/e2e/lazy-modules.test.ts to check what a node loads at start.
import { appendFileSync } from 'node:fs';
import Module, { register } from 'node:module';

const log = process.env.DROVER_TEST_MODULE_LOG;
if (log) {
  register(new URL('./module-log-hooks.mjs', import.meta.url), { data: { log } });
  const compile = Module.prototype._compile;
  Module.prototype._compile = function logged(content, filename) {
    appendFileSync(log, `${filename}\n`);
    return compile.call(this, content, filename);
  };
}
