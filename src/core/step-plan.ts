/**
 * Which stored step answers each `ctx.step` call of one handler run: pure
 * logic, no I/O, shared by the node's step context and the remote-worker SDK.
 *
 * A run asks for steps in the order its code reaches them; the n-th call is
 * sequence number n. A call whose sequence number is stored under the same
 * name (and kind) is memoized; a call past what is stored runs as that
 * sequence number. Anything else means the code changed under the job (a
 * step inserted, removed, renamed or moved) and is refused, naming both
 * steps, rather than handing one step's stored result to another. Sequence
 * numbers are taken when the call is made, so steps started together
 * (`Promise.all`) get the order of their calls, and a re-run finds them
 * whichever of them finished first.
 */
import { NonRetryableError } from './errors.js';
import { checkStepName, type DurableLimits, type StepRow } from './durable.js';

/** What the step context does with one call. */
export type StepAnswer =
  | { do: 'memoized'; step: StepRow }
  | { do: 'run'; seq: number }
  | { do: 'fail'; error: NonRetryableError; sequenceChanged?: SequenceChange };

/** A re-run asked `asked` at `seq`, where `expected` is stored (payload of `step:sequence_changed`). */
export interface SequenceChange {
  expected: string;
  asked: string;
  seq: number;
}

/** A step result as it will be stored: its JSON text and byte length, and the value a caller gets back (the JSON read back, the same on every run). */
export interface MeasuredResult {
  json: string;
  bytes: number;
  value: unknown;
}

/**
 * One run's step plan.
 *
 * @example
 * const plan = new StepPlan(await store.getSteps(job.id), limits);
 * const answer = plan.next('charge-card', 'run');
 * if (answer.do === 'memoized') return answer.step.result;
 * if (answer.do === 'fail') throw answer.error;
 * const measured = plan.measure(await fn()); // throws when too large
 * // ... store it as seq answer.seq, then:
 * plan.recorded(storedRow);
 */
export class StepPlan {
  readonly #bySeq = new Map<number, StepRow>();
  readonly #byName = new Map<string, StepRow>();
  readonly #asked = new Set<string>();
  readonly #limits: DurableLimits;
  #calls = 0;
  #stateBytes = 0;

  constructor(stored: readonly StepRow[], limits: DurableLimits) {
    this.#limits = limits;
    for (const step of stored) this.#remember(step);
  }

  /** Steps this run has asked for so far. */
  get calls(): number {
    return this.#calls;
  }

  /** Answer the next `ctx.step` call, of `kind`, named `name`. */
  next(name: string, kind: StepRow['kind']): StepAnswer {
    const invalid = checkStepName(name);
    if (invalid) return fail(`invalid step name ${JSON.stringify(name)}: ${invalid}`);
    if (this.#asked.has(name)) {
      return fail(
        `step "${name}" is asked for twice in one run; step names are unique within a job (in a loop, add the index: \`${name}:\${i}\`)`,
      );
    }
    this.#asked.add(name);
    const seq = this.#calls++;

    const atSeq = this.#bySeq.get(seq);
    if (atSeq && atSeq.name === name) {
      if (atSeq.kind !== kind) {
        return changed(
          { expected: atSeq.name, asked: name, seq },
          `step "${name}" (step ${seq + 1}) was stored as a ${kindWord(atSeq.kind)} step and is now asked for as a ${kindWord(kind)} step`,
        );
      }
      return { do: 'memoized', step: atSeq };
    }
    if (atSeq) {
      return changed(
        { expected: atSeq.name, asked: name, seq },
        `step ${seq + 1} of this job is stored as "${atSeq.name}" but the handler now asks for "${name}" there`,
      );
    }
    const elsewhere = this.#byName.get(name);
    if (elsewhere) {
      return changed(
        { expected: elsewhere.name, asked: name, seq },
        `step "${name}" is stored as step ${elsewhere.seq + 1} but the handler now asks for it as step ${seq + 1}`,
      );
    }
    if (seq >= this.#limits.maxStepsPerJob) {
      return fail(
        `step "${name}" would be step ${seq + 1} of this job, past durable.maxStepsPerJob (${this.#limits.maxStepsPerJob}); ` +
          'batch the work into fewer steps or raise the limit',
      );
    }
    return { do: 'run', seq };
  }

  /**
   * The step result as it will be stored, or a `NonRetryableError` thrown when
   * it cannot be (not JSON, past `maxStepResultBytes` or the job's
   * `maxStateBytesPerJob`). `undefined` is stored as `null`.
   */
  measure(name: string, result: unknown): MeasuredResult {
    let json: string | undefined;
    try {
      json = JSON.stringify(result === undefined ? null : result);
    } catch (cause) {
      throw notJsonError(name, cause);
    }
    // A function or symbol result stringifies to undefined.
    if (json === undefined) json = 'null';
    const bytes = utf8Length(json);
    if (bytes > this.#limits.maxStepResultBytes) {
      throw new NonRetryableError(
        `step "${name}" returned ${bytes} bytes of JSON, past durable.maxStepResultBytes (${this.#limits.maxStepResultBytes}); ` +
          'store large data elsewhere and return a reference to it, or raise the limit',
      );
    }
    if (this.#stateBytes + bytes > this.#limits.maxStateBytesPerJob) {
      throw new NonRetryableError(
        `step "${name}" would bring this job's stored step results to ${this.#stateBytes + bytes} bytes, past durable.maxStateBytesPerJob ` +
          `(${this.#limits.maxStateBytesPerJob}); store large data elsewhere and return references, or raise the limit`,
      );
    }
    return { json, bytes, value: JSON.parse(json) as unknown };
  }

  /**
   * Where a `waitForEvent` step at `seq` starts looking back for its event:
   * when the step before it began (that step's side effect is often what
   * sends the event, and it may arrive before the wait is even asked for),
   * or when the job was created, for a job's first step. Events that already
   * resolved another wait of the job are skipped by the store.
   */
  lookBackFrom(seq: number, jobCreatedAt: number): number {
    let previous: StepRow | undefined;
    for (const step of this.#bySeq.values()) if (step.seq < seq && (!previous || step.seq > previous.seq)) previous = step;
    return previous ? Math.min(previous.startedAt, previous.finishedAt) : jobCreatedAt;
  }

  /** A step of this run is stored (by `recordStep`, or by a suspend that did not suspend). */
  recorded(step: StepRow): void {
    this.#remember(step);
  }

  #remember(step: StepRow): void {
    if (!this.#bySeq.has(step.seq)) this.#stateBytes += step.resultBytes;
    this.#bySeq.set(step.seq, step);
    this.#byName.set(step.name, step);
  }
}

/** A step's result could not be turned into JSON (a BigInt, a cycle): the same code would fail the same way, so it is not retried. */
export function notJsonError(name: string, cause: unknown): NonRetryableError {
  return new NonRetryableError(`step "${name}" returned a value that cannot be stored as JSON (${String(cause)}); return plain data`, { cause });
}

function fail(message: string): StepAnswer {
  return { do: 'fail', error: new NonRetryableError(message) };
}

function changed(change: SequenceChange, detail: string): StepAnswer {
  return {
    do: 'fail',
    sequenceChanged: change,
    error: new NonRetryableError(
      `the job's steps changed between runs: ${detail}. Finished steps are matched by name and order; ` +
        'a job started under the old code cannot continue under the new one (retry it to start over, or keep the old step order)',
    ),
  };
}

function kindWord(kind: StepRow['kind']): string {
  return kind === 'event' ? 'waitForEvent' : kind;
}

/** UTF-8 byte length of a string without allocating its bytes (lone surrogates count 3, as the encoder writes U+FFFD). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}
