import { describe, expect, it } from 'vitest';
import { DURABLE_DEFAULTS, type StepRow } from '../../src/core/durable.js';
import { NonRetryableError } from '../../src/core/errors.js';
import { StepPlan, utf8Length } from '../../src/core/step-plan.js';

function row(name: string, seq: number, result: unknown = name, kind: StepRow['kind'] = 'run'): StepRow {
  const json = JSON.stringify(result);
  return { jobId: 'j1', name, seq, kind, attempt: 1, startedAt: 1, finishedAt: 2, result, resultBytes: json.length, timedOut: false };
}

describe('StepPlan', () => {
  it('runs every step of a first run in call order', () => {
    const plan = new StepPlan([], DURABLE_DEFAULTS);
    expect(plan.next('a', 'run')).toEqual({ do: 'run', seq: 0 });
    expect(plan.next('b', 'sleep')).toEqual({ do: 'run', seq: 1 });
    expect(plan.calls).toBe(2);
  });

  it('memoizes stored steps and runs the ones past them', () => {
    const plan = new StepPlan([row('a', 0, { n: 1 }), row('b', 1, null, 'sleep')], DURABLE_DEFAULTS);
    expect(plan.next('a', 'run')).toMatchObject({ do: 'memoized', step: { name: 'a', result: { n: 1 } } });
    expect(plan.next('b', 'sleep')).toMatchObject({ do: 'memoized', step: { name: 'b' } });
    expect(plan.next('c', 'run')).toEqual({ do: 'run', seq: 2 });
  });

  it('finds steps started together whichever of them was stored (a gap in seq)', () => {
    const plan = new StepPlan([row('b', 1)], DURABLE_DEFAULTS);
    expect(plan.next('a', 'run')).toEqual({ do: 'run', seq: 0 });
    expect(plan.next('b', 'run')).toMatchObject({ do: 'memoized' });
  });

  it('refuses a name asked twice in one run, with the loop advice', () => {
    const plan = new StepPlan([], DURABLE_DEFAULTS);
    plan.next('item', 'run');
    const answer = plan.next('item', 'run');
    expect(answer.do).toBe('fail');
    if (answer.do !== 'fail') return;
    expect(answer.error).toBeInstanceOf(NonRetryableError);
    expect(answer.error.message).toMatch(/step "item" is asked for twice in one run.*item:\$\{i\}/);
    expect(answer.sequenceChanged).toBeUndefined();
  });

  it('refuses an invalid name', () => {
    const answer = new StepPlan([], DURABLE_DEFAULTS).next('', 'run');
    expect(answer).toMatchObject({ do: 'fail' });
  });

  it('detects a step inserted before stored ones, naming both', () => {
    const plan = new StepPlan([row('a', 0), row('b', 1)], DURABLE_DEFAULTS);
    expect(plan.next('a', 'run').do).toBe('memoized');
    const answer = plan.next('x', 'run');
    expect(answer).toMatchObject({ do: 'fail', sequenceChanged: { expected: 'b', asked: 'x', seq: 1 } });
    if (answer.do === 'fail') expect(answer.error.message).toMatch(/stored as "b" but the handler now asks for "x"/);
  });

  it('detects stored steps asked in another order', () => {
    const plan = new StepPlan([row('a', 0), row('b', 1)], DURABLE_DEFAULTS);
    expect(plan.next('b', 'run')).toMatchObject({ do: 'fail', sequenceChanged: { expected: 'a', asked: 'b', seq: 0 } });
  });

  it('detects a stored step moved past a gap', () => {
    const plan = new StepPlan([row('a', 0), row('c', 2)], DURABLE_DEFAULTS);
    plan.next('a', 'run');
    expect(plan.next('c', 'run')).toMatchObject({ do: 'fail', sequenceChanged: { expected: 'c', asked: 'c', seq: 1 } });
  });

  it('detects a step whose kind changed', () => {
    const plan = new StepPlan([row('a', 0)], DURABLE_DEFAULTS);
    const answer = plan.next('a', 'sleep');
    expect(answer).toMatchObject({ do: 'fail', sequenceChanged: { expected: 'a', asked: 'a', seq: 0 } });
    if (answer.do === 'fail') expect(answer.error.message).toMatch(/stored as a run step and is now asked for as a sleep step/);
  });

  it('refuses a step past maxStepsPerJob before running it', () => {
    const plan = new StepPlan([], { ...DURABLE_DEFAULTS, maxStepsPerJob: 2 });
    plan.next('a', 'run');
    plan.next('b', 'run');
    const answer = plan.next('c', 'run');
    expect(answer).toMatchObject({ do: 'fail' });
    if (answer.do === 'fail') expect(answer.error.message).toMatch(/durable\.maxStepsPerJob \(2\)/);
  });

  it('measures results as stored JSON, in UTF-8 bytes', () => {
    const plan = new StepPlan([], DURABLE_DEFAULTS);
    expect(plan.measure('a', { s: 'é' })).toEqual({ json: '{"s":"é"}', bytes: 10, value: { s: 'é' } });
    expect(plan.measure('a', undefined)).toEqual({ json: 'null', bytes: 4, value: null });
    expect(plan.measure('a', new Date(0)).value).toBe('1970-01-01T00:00:00.000Z');
  });

  it('refuses a result that is not JSON or too large', () => {
    const plan = new StepPlan([], { ...DURABLE_DEFAULTS, maxStepResultBytes: 10 });
    expect(() => plan.measure('a', 10n)).toThrow(NonRetryableError);
    expect(() => plan.measure('big', 'x'.repeat(20))).toThrow(/step "big" returned 22 bytes of JSON, past durable\.maxStepResultBytes \(10\)/);
  });

  it('counts stored and recorded results against maxStateBytesPerJob', () => {
    const plan = new StepPlan([row('a', 0, 'x'.repeat(8))], { ...DURABLE_DEFAULTS, maxStateBytesPerJob: 20 });
    plan.next('a', 'run');
    expect(plan.next('b', 'run')).toEqual({ do: 'run', seq: 1 });
    expect(plan.measure('b', 'y'.repeat(8)).bytes).toBe(10);
    plan.recorded(row('b', 1, 'y'.repeat(8)));
    plan.next('c', 'run');
    expect(() => plan.measure('c', 'z')).toThrow(/maxStateBytesPerJob \(20\)/);
  });
});

describe('utf8Length', () => {
  it('agrees with the encoder', () => {
    for (const text of ['', 'abc', 'é', '€', '😀', 'a\ud800b', '\udc00']) {
      expect(utf8Length(text)).toBe(new TextEncoder().encode(text).length);
    }
  });
});

describe('StepPlan.lookBackFrom', () => {
  it('starts where the step before began, or at the job’s creation', () => {
    const plan = new StepPlan([{ ...row('a', 0), startedAt: 100, finishedAt: 150 }, { ...row('b', 1), startedAt: 200, finishedAt: 260 }], DURABLE_DEFAULTS);
    expect(plan.lookBackFrom(2, 5)).toBe(200);
    expect(plan.lookBackFrom(1, 5)).toBe(100);
    expect(plan.lookBackFrom(0, 5)).toBe(5);
  });
});
