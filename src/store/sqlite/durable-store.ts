/**
 * The engine's `DurableStore` role: durable execution's transitions (durable.ts),
 * each one group-commit write op, and the reads of its state (steps, waits,
 * pending interrupts) for the API and console. Reads wait until the writes
 * before them are durable (engine-core.ts `visible`); a malformed job id
 * finds nothing rather than throwing, without asking for the statements (so
 * even a closed store answers it).
 */
import type { StepRow, SuspendRequest, WaitRow } from '../../core/durable.js';
import type { DurableStore, RecordStepRequest, RecordStepResult, ResumeResult, SuspendResult, WaitFilter } from '../roles/durable-store.js';
import * as durable from './durable.js';
import type { DurableStatements } from './durable-statements.js';
import { durableContext, type EngineCore, type RolePart } from './engine-core.js';
import { parseJobId } from './rows.js';

export class SqliteDurableStore implements RolePart<DurableStore> {
  readonly #core: EngineCore;

  constructor(core: EngineCore) {
    this.#core = core;
  }

  async getSteps(jobId: string): Promise<StepRow[]> {
    await this.#core.visible();
    const n = parseJobId(jobId);
    return n === null ? [] : this.#read().fixed.stepsByJob.all(n).map(durable.toStepRow);
  }

  recordStep(jobId: string, token: string, step: RecordStepRequest): Promise<RecordStepResult> {
    return this.#core.write((own) => durable.recordStep(durableContext(this.#core, own), jobId, token, step));
  }

  suspend(jobId: string, token: string, request: SuspendRequest): Promise<SuspendResult> {
    return this.#core.write((own) => {
      this.#core.memo.forget(jobId);
      return durable.suspend(durableContext(this.#core, own), jobId, token, request);
    });
  }

  resumeWait(waitId: string, input: unknown, resolvedBy: string): Promise<ResumeResult> {
    return this.#core.write((own) => durable.resumeWait(durableContext(this.#core, own), waitId, input, resolvedBy));
  }

  async getWait(waitId: string): Promise<WaitRow | null> {
    await this.#core.visible();
    const raw = this.#read().fixed.waitById.get(waitId);
    return raw ? durable.toWaitRow(raw) : null;
  }

  async pendingWait(jobId: string): Promise<WaitRow | null> {
    await this.#core.visible();
    const n = parseJobId(jobId);
    const raw = n === null ? undefined : this.#read().fixed.pendingWaitOfJob.get(n);
    return raw ? durable.toWaitRow(raw) : null;
  }

  async listWaits(filter: WaitFilter): Promise<WaitRow[]> {
    await this.#core.visible();
    return this.#read().listWaits(filter).map(durable.toWaitRow);
  }

  async pendingInterrupts(): Promise<{ count: number; oldestCreatedAt: number | null }> {
    await this.#core.visible();
    const row = this.#read().fixed.pendingInterrupts.get()!;
    return { count: row.n, oldestCreatedAt: row.oldest };
  }

  #read(): DurableStatements {
    this.#core.assertOpen();
    return this.#core.prepared.d;
  }
}
