/**
 * What an engine can do beyond the roles every engine plays, declared so
 * callers branch on a flag instead of probing for methods. An optional method
 * (a role only some engines play) has a capability naming it; the conformance
 * suite checks that each engine declares exactly the optional methods it has.
 */
export interface StoreCapabilities {
  readonly engine: 'sqlite' | 'postgres';
  /** Several nodes may share the store (leases fence across processes). */
  readonly multiNode: boolean;
  /** The engine pushes wakeups to other processes (LISTEN/NOTIFY). */
  readonly crossProcessNotify: boolean;
  /**
   * Writes submitted in one event-loop turn commit together, so a lease
   * requested alongside an enqueue joins its commit (see runtime.ts). Without
   * it, such a lease is an extra round trip that finds nothing.
   */
  readonly groupCommit: boolean;
  /** The engine keeps dispatch rate-limit windows every node shares (`SharedRateLimits.takeRateStart`). */
  readonly sharedRateLimits: boolean;
  /**
   * An enqueue can lease its due jobs to this node in the same statement
   * (`EnqueueOptions.lease`): a job enqueued into an idle node starts after
   * one round trip instead of an insert and then a lease (runtime.ts).
   */
  readonly leaseAtIntake: boolean;
  /**
   * `start` with a `StartWatch` may answer once the mark is on its way
   * (written to the kernel), not once the store answered: the handler runs a
   * round trip sooner, and a mark that does not hold is reported to the
   * watch (postgres/start-batch.ts says what still holds). Absent: false.
   */
  readonly startOnSend?: boolean;
}

/** Every role carries the engine's capabilities, so a consumer given one role can still branch on them. */
export interface StoreRole {
  readonly capabilities: StoreCapabilities;
}

/** A role of the interface as an engine's part serves it: the engine alone carries the capabilities. */
export type RolePart<Role extends StoreRole> = Omit<Role, keyof StoreRole>;

/**
 * The optional methods behind each capability flag: an engine declaring the
 * flag implements all of them, an engine without it implements none.
 */
export const OPTIONAL_METHODS = {
  sharedRateLimits: ['takeRateStart'],
} as const satisfies Partial<Record<keyof StoreCapabilities, readonly string[]>>;

/**
 * Where an engine's declared capabilities and its optional methods disagree,
 * one line per mismatch; empty when they agree.
 *
 * @example
 * capabilityMismatches(engine); // [] for a well-formed engine
 */
export function capabilityMismatches(engine: StoreRole): string[] {
  const problems: string[] = [];
  const methods = engine as unknown as Record<string, unknown>;
  for (const [flag, names] of Object.entries(OPTIONAL_METHODS)) {
    const declared = engine.capabilities[flag as keyof StoreCapabilities] === true;
    for (const name of names) {
      const present = typeof methods[name] === 'function';
      if (declared && !present) problems.push(`declares ${flag} but has no ${name}()`);
      if (!declared && present) problems.push(`has ${name}() but does not declare ${flag}`);
    }
  }
  return problems;
}
