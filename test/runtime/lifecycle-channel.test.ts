/**
 * A lifecycle channel (one event's emitter for a per-job hot path) reaches the
 * same listeners as `emit`, including ones subscribed after it was made, says
 * whether anyone listens, and a throwing listener is reported, not thrown.
 */
import { describe, expect, it } from 'vitest';
import type { LeasedJob } from '../../src/core/types.js';
import { Lifecycle } from '../../src/runtime/lifecycle.js';

const job = { id: '1', handler: 'h' } as LeasedJob;

describe('Lifecycle.channel', () => {
  it('reaches listeners subscribed before and after it was made, and only while they listen', () => {
    const errors: string[] = [];
    const lifecycle = new Lifecycle((error, event) => errors.push(`${event}: ${error.message}`));
    const seen: string[] = [];
    const offEarly = lifecycle.on('job:start', ({ waitMs }) => seen.push(`early ${waitMs}`));
    const channel = lifecycle.channel('job:start');
    expect(channel.listening).toBe(true);
    const offLate = lifecycle.on('job:start', ({ waitMs }) => seen.push(`late ${waitMs}`));
    lifecycle.on('job:start', () => {
      throw new Error('boom');
    });
    channel.emit({ job, waitMs: 1 });
    lifecycle.emit('job:start', { job, waitMs: 2 });
    expect(seen).toEqual(['early 1', 'late 1', 'early 2', 'late 2']);
    expect(errors).toEqual(['job:start: boom', 'job:start: boom']);
    offEarly();
    offLate();
    expect(lifecycle.channel('job:succeeded').listening).toBe(false);
  });
});
