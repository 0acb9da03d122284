/**
 * The engine's `DurableStore` role: durable execution's transitions (record a
 * step, suspend, resume a wait), each one transaction on the general pool,
 * and the reads of its state (steps, waits, pending interrupts) for the API
 * and console. The SQL is durable.ts's; a malformed job id finds nothing.
 */
import type { StepRow, SuspendRequest, WaitRow } from '../../core/durable.js';
import type { DurableStore, RecordStepRequest, RecordStepResult, ResumeResult, SuspendResult, WaitFilter } from '../roles/durable-store.js';
import { inTransaction, retryConflicts } from './connection.js';
import * as durable from './durable.js';
import type { EngineCore, RolePart } from './engine-core.js';
import { parseJobId } from './rows.js';

export class PostgresDurableStore implements RolePart<DurableStore> {
  readonly #core: EngineCore;

  constructor(core: EngineCore) {
    this.#core = core;
  }

  async getSteps(jobId: string): Promise<StepRow[]> {
    const n = parseJobId(jobId);
    return n === null ? [] : (await this.#core.query<durable.RawStep>(durable.STEPS_BY_JOB, [n])).map(durable.toStepRow);
  }

  recordStep(jobId: string, token: string, step: RecordStepRequest): Promise<RecordStepResult> {
    const core = this.#core;
    return core.run('recording a step', () =>
      retryConflicts(() => inTransaction(core.pool, (client) => durable.recordStep(client, parseJobId(jobId), token, step, core.clock()))),
    );
  }

  suspend(jobId: string, token: string, request: SuspendRequest): Promise<SuspendResult> {
    const core = this.#core;
    return core.run('suspending', () =>
      retryConflicts(() => inTransaction(core.pool, (client) => durable.suspend(client, parseJobId(jobId), token, request, core.clock()))),
    );
  }

  resumeWait(waitId: string, input: unknown, resolvedBy: string): Promise<ResumeResult> {
    const core = this.#core;
    return core.durableWrite('resuming', (client, effects) => durable.resumeWait(client, waitId, input, resolvedBy, core.clock(), effects));
  }

  async getWait(waitId: string): Promise<WaitRow | null> {
    const raw = (await this.#core.query<durable.RawWait>(durable.WAIT_BY_ID, [waitId]))[0];
    return raw ? durable.toWaitRow(raw) : null;
  }

  async pendingWait(jobId: string): Promise<WaitRow | null> {
    const n = parseJobId(jobId);
    const raw = n === null ? undefined : (await this.#core.query<durable.RawWait>(durable.PENDING_WAIT_OF_JOB, [n]))[0];
    return raw ? durable.toWaitRow(raw) : null;
  }

  async listWaits(filter: WaitFilter): Promise<WaitRow[]> {
    const { text, values } = durable.listWaitsQuery(filter);
    return (await this.#core.query<durable.RawWait>(text, values)).map(durable.toWaitRow);
  }

  async pendingInterrupts(): Promise<{ count: number; oldestCreatedAt: number | null }> {
    const row = (await this.#core.query<{ n: number; oldest: number | null }>(durable.PENDING_INTERRUPTS, []))[0];
    return { count: row?.n ?? 0, oldestCreatedAt: row?.oldest ?? null };
  }
}
