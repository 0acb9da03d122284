/**
 * The transaction around intake and around durable writes that may queue
 * suspended jobs again: the work, then `finishIntake` (queue counts and the
 * NOTIFY to other nodes) in the same transaction, retried whole on a
 * serialization conflict with fresh effects. The caller tells this process's
 * listeners about `woken` once it has the answer (after the commit).
 */
import type pg from 'pg';
import type { EnqueueOptions } from '../engine.js';
import type { Woken } from '../woken.js';
import { inTransaction, retryConflicts } from './connection.js';
import { finishIntake, newIntakeEffects, type IntakeEffects } from './intake.js';

export async function intakeTransaction<T>(
  pool: pg.Pool,
  target: { channel: string; instanceId: string },
  work: (client: pg.PoolClient, effects: IntakeEffects) => Promise<T>,
  options?: EnqueueOptions,
): Promise<{ value: T; woken: Woken }> {
  let effects = newIntakeEffects();
  const value = await retryConflicts(() => {
    effects = newIntakeEffects();
    return inTransaction(pool, async (client) => {
      const result = await work(client, effects);
      await finishIntake(client, effects, options, target);
      return result;
    });
  });
  return { value, woken: effects.woken };
}
