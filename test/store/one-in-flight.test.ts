/**
 * The hot-path writers' batching (src/store/postgres/one-in-flight.ts): one
 * batch in flight; calls made meanwhile join the next; an urgent call goes
 * out beside the one in flight, never as a third.
 */
import { describe, expect, it } from 'vitest';
import { OneInFlight } from '../../src/store/postgres/one-in-flight.js';

interface Call {
  name: string;
  urgent: boolean;
}

/** A batcher whose batches stay out until the test answers them. */
function held() {
  const sent: string[][] = [];
  const answers: Array<() => void> = [];
  const batcher = new OneInFlight<Call>(
    (pending) => pending.length,
    (batch) => {
      sent.push(batch.map((c) => c.name));
      return new Promise<void>((resolve) => answers.push(resolve));
    },
    (call) => call.urgent,
  );
  return { batcher, sent, answerNext: () => answers.shift()!() };
}

/** Two event-loop turns: a batch the batcher may send has been sent (it waits one setImmediate). */
const turns = async () => {
  for (let i = 0; i < 2; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe('OneInFlight', () => {
  it('holds calls made while a batch is in flight for the next one, all in one batch', async () => {
    const { batcher, sent, answerNext } = held();
    batcher.push({ name: 'a', urgent: false });
    await turns();
    batcher.push({ name: 'b', urgent: false });
    batcher.push({ name: 'c', urgent: false });
    await turns();
    expect(sent).toEqual([['a']]);
    answerNext();
    await turns();
    expect(sent).toEqual([['a'], ['b', 'c']]);
    answerNext();
    await batcher.drain();
  });

  it('sends an urgent call beside the batch in flight, with whatever waits, and never a third batch', async () => {
    const { batcher, sent, answerNext } = held();
    batcher.push({ name: 'a', urgent: false });
    await turns();
    batcher.push({ name: 'b', urgent: false });
    batcher.push({ name: 'c', urgent: true });
    await turns();
    expect(sent).toEqual([['a'], ['b', 'c']]);
    // Two out: even an urgent call waits now.
    batcher.push({ name: 'd', urgent: true });
    await turns();
    expect(sent).toHaveLength(2);
    answerNext();
    await turns();
    expect(sent).toEqual([['a'], ['b', 'c'], ['d']]);
    const drained = batcher.drain();
    answerNext();
    answerNext();
    await drained;
  });

  it('drain waits for both batches in flight', async () => {
    const { batcher, answerNext } = held();
    batcher.push({ name: 'a', urgent: false });
    await turns();
    batcher.push({ name: 'b', urgent: true });
    await turns();
    let drained = false;
    const draining = batcher.drain().then(() => (drained = true));
    answerNext();
    await turns();
    expect(drained).toBe(false);
    answerNext();
    await draining;
    expect(drained).toBe(true);
  });
});
