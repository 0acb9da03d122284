/**
 * Reads of durable-execution state (steps, waits, pending interrupts) for the
 * API and console; a malformed job id finds nothing rather than throwing,
 * without asking for the statements (so even a closed store answers it).
 */
import type { StepRow, WaitRow } from '../../core/durable.js';
import type { DurableFixed } from './durable-statements.js';
import { toStepRow, toWaitRow } from './durable.js';
import { parseJobId } from './rows.js';

export function readSteps(d: () => DurableFixed, jobId: string): StepRow[] {
  const n = parseJobId(jobId);
  return n === null ? [] : d().stepsByJob.all(n).map(toStepRow);
}

export function readWait(d: DurableFixed, waitId: string): WaitRow | null {
  const raw = d.waitById.get(waitId);
  return raw ? toWaitRow(raw) : null;
}

export function readPendingWait(d: () => DurableFixed, jobId: string): WaitRow | null {
  const n = parseJobId(jobId);
  const raw = n === null ? undefined : d().pendingWaitOfJob.get(n);
  return raw ? toWaitRow(raw) : null;
}

export function readPendingInterrupts(d: DurableFixed): { count: number; oldestCreatedAt: number | null } {
  const row = d.pendingInterrupts.get()!;
  return { count: row.n, oldestCreatedAt: row.oldest };
}
