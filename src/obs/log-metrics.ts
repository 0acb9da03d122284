/** `drover_log_lines_dropped_total`: log lines stdout did not take in time (logger.ts), read on scrape. */
import { Counter, type Registry } from 'prom-client';
import { droppedLogLines } from './logger.js';

export function observeLogDrops(registry: Registry): void {
  new Counter({
    name: 'drover_log_lines_dropped_total',
    help: 'Log lines dropped because stdout did not take them (its reader stopped or is too slow)',
    registers: [registry],
    collect() {
      // The count lives in the logger, which exists before any registry; report it as it stands.
      this.reset();
      this.inc(droppedLogLines());
    },
  });
}
