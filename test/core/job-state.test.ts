import { describe, expect, it } from 'vitest';
import { DroverError } from '../../src/core/errors.js';
import { assertTransition, canTransition, isTerminal, TRANSITIONS } from '../../src/core/job-state.js';
import { JOB_STATES, type JobState } from '../../src/core/types.js';

const ALLOWED: ReadonlyArray<[JobState, JobState]> = [
  ['scheduled', 'queued'],
  ['scheduled', 'cancelled'],
  ['queued', 'running'],
  ['queued', 'cancelled'],
  ['queued', 'scheduled'],
  ['running', 'succeeded'],
  ['running', 'queued'],
  ['running', 'scheduled'],
  ['running', 'dead'],
  ['running', 'cancelled'],
  ['running', 'suspended'],
  ['suspended', 'queued'],
  ['suspended', 'cancelled'],
  ['dead', 'queued'],
  ['cancelled', 'queued'],
];

describe('job state machine', () => {
  it('has an entry for every state and nothing else', () => {
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...JOB_STATES].sort());
  });

  it('allows exactly the documented transitions', () => {
    const allowed = new Set(ALLOWED.map(([a, b]) => `${a}->${b}`));
    for (const from of JOB_STATES) {
      for (const to of JOB_STATES) {
        expect(canTransition(from, to), `${from} -> ${to}`).toBe(allowed.has(`${from}->${to}`));
      }
    }
  });

  it('never allows a state to transition to itself', () => {
    for (const s of JOB_STATES) expect(canTransition(s, s)).toBe(false);
  });

  it('makes succeeded final, and dead/cancelled re-queueable only', () => {
    expect(TRANSITIONS.succeeded).toEqual([]);
    expect(TRANSITIONS.dead).toEqual(['queued']);
    expect(TRANSITIONS.cancelled).toEqual(['queued']);
  });

  it('has no dead ends: succeeded is reachable from every other state', () => {
    const reach = (from: JobState, seen = new Set<JobState>()): Set<JobState> => {
      for (const to of TRANSITIONS[from]) if (!seen.has(to)) reach(to, seen.add(to));
      return seen;
    };
    for (const s of JOB_STATES.filter((x) => x !== 'succeeded')) expect(reach(s).has('succeeded'), s).toBe(true);
  });

  it('isTerminal', () => {
    expect(JOB_STATES.filter(isTerminal)).toEqual(['succeeded', 'dead', 'cancelled']);
  });

  it('returns false for unknown states instead of throwing', () => {
    expect(canTransition('bogus' as JobState, 'queued')).toBe(false);
  });

  it('assertTransition throws invalid_state naming both states and the options', () => {
    expect(() => assertTransition('dead', 'queued')).not.toThrow();
    try {
      assertTransition('scheduled', 'running');
      throw new Error('expected throw');
    } catch (error) {
      expect(error).toBeInstanceOf(DroverError);
      expect((error as DroverError).code).toBe('invalid_state');
      expect((error as DroverError).status).toBe(409);
      expect((error as DroverError).message).toBe('job is scheduled and cannot become running; from scheduled it can become: queued, cancelled');
    }
    expect(() => assertTransition('succeeded', 'queued')).toThrow(/from succeeded it can become: \(nothing: it is final\)/);
  });
});
