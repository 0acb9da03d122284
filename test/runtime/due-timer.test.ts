/**
 * The due timer must not lose a wake-up. A staging pass reads the store once;
 * a job scheduled after that read, and due before the pass answers, is
 * invisible to it, and its answer (nothing else due) arms no timer. A call
 * made meanwhile (the job's own timer firing) must therefore get a pass of
 * its own, not the stale one's answer: on SQLite nothing else would stage
 * that job (there is no fallback poll), and it would stay scheduled for good.
 * Real SQLite file; the store's clock and the pass's answer are held by the
 * test so the interleaving is exact.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobStore, StageResult } from '../../src/store/engine.js';
import { openSqliteEngine, type SqliteEngine } from '../../src/store/sqlite/sqlite-engine.js';
import { DueTimer } from '../../src/runtime/due-timer.js';

let dir: string | null = null;
let engine: SqliteEngine | null = null;
let timer: DueTimer | null = null;

afterEach(async () => {
  timer?.stop();
  await engine?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  engine = timer = dir = null;
});

describe('DueTimer', () => {
  it('stages a job scheduled while a pass was out, with one more pass shared by every caller meanwhile', async () => {
    let now = Date.UTC(2026, 0, 1);
    const clock = () => now;
    dir = mkdtempSync(join(tmpdir(), 'drover-due-timer-'));
    engine = await openSqliteEngine({ path: join(dir, 'drover.db'), clock });
    await engine.migrate();
    const real = engine;

    // Each pass reads the store at once; its answer waits until the test lets it go.
    let passes = 0;
    let letGo: (() => void) | null = null;
    const held = (): Promise<void> => new Promise((resolve) => (letGo = resolve));
    let gate = held();
    let read!: () => void;
    const firstRead = new Promise<void>((resolve) => (read = resolve));
    const store = {
      async stageDue(): Promise<StageResult> {
        const result = await real.stageDue();
        passes++;
        read();
        await gate;
        return result;
      },
    } as unknown as JobStore;
    const errors: Error[] = [];
    timer = new DueTimer(store, clock, (error) => errors.push(error));

    timer.start();
    await firstRead;
    // After the first pass read the store: a retry scheduled 10 ms out, then time passes it.
    const [created] = await real.enqueue([{ handler: 'h', queue: 'default', payload: null, priority: 0, runAt: now + 10, maxAttempts: 3 }]);
    const id = created!.job.id;
    expect((await real.getJob(id))?.state).toBe('scheduled');
    now += 10;
    const callers = [timer.stageNow(), timer.stageNow(), timer.stageNow()];

    // The first pass answers "nothing else due"; the callers' pass runs after it and finds the job.
    const first = letGo!;
    gate = Promise.resolve();
    first();
    await Promise.all(callers);
    expect((await real.getJob(id))?.state).toBe('queued');
    expect(passes).toBe(2);
    expect(errors).toEqual([]);
  });

  it('starts a fresh pass once the one out has answered', async () => {
    const now = Date.UTC(2026, 0, 1);
    dir = mkdtempSync(join(tmpdir(), 'drover-due-timer-'));
    engine = await openSqliteEngine({ path: join(dir, 'drover.db'), clock: () => now });
    await engine.migrate();
    const real = engine;
    let passes = 0;
    const store = {
      async stageDue(): Promise<StageResult> {
        passes++;
        return real.stageDue();
      },
    } as unknown as JobStore;
    timer = new DueTimer(store, () => now, () => {});
    await timer.stageNow();
    await timer.stageNow();
    expect(passes).toBe(2);
  });
});
