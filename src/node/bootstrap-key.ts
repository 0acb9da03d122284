/**
 * The first admin key of an empty store, made at a node's first start: from
 * DROVER_BOOTSTRAP_ADMIN_KEY, or generated and printed once (or written to
 * `--admin-key-output`). Nodes starting together on an empty shared store
 * race for it; a claim in the store's metadata lets one of them make it.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, fsyncSync, openSync, rmSync, writeSync } from 'node:fs';
import type { createApiKey } from '../api/auth.js';
import { DroverError, toError } from '../core/errors.js';
import type { StorageEngine } from '../store/engine.js';

/** How long a node's claim to create the first admin key keeps others from trying (it may have died before creating it). */
const BOOTSTRAP_CLAIM_MS = 60_000;
const BOOTSTRAP_CLAIM_KEY = 'bootstrap_admin_key_claim';

function parseClaim(raw: string | null): { by: string; at: number } | null {
  try {
    const claim = raw === null ? null : (JSON.parse(raw) as { by?: unknown; at?: unknown });
    return claim && typeof claim.by === 'string' && typeof claim.at === 'number' ? { by: claim.by, at: claim.at } : null;
  } catch {
    return null;
  }
}

/** Make the first admin key unless the store has keys already (startNode calls it once the store is open). */
export async function bootstrapAdminKey(store: StorageEngine, clock: () => number, given: string | undefined, print: (line: string) => void, output?: string): Promise<void> {
  if ((await store.listKeys()).length > 0) return;
  // Claim the output file before the key exists, so a key is never created that nobody can read.
  const out = given ? null : output ? openKeyOutput(output) : null;
  // Nodes starting together on an empty shared store: one claims the job, the
  // others start without printing a key of their own (the operator gets one).
  const claim = randomUUID();
  const now = clock();
  const holder = await store
    .updateMeta(BOOTSTRAP_CLAIM_KEY, (current) => {
      const held = parseClaim(current);
      return held && now - held.at < BOOTSTRAP_CLAIM_MS ? null : JSON.stringify({ by: claim, at: now });
    })
    .catch((error: unknown) => {
      out?.discard();
      throw error;
    });
  if (parseClaim(holder)?.by !== claim) {
    out?.discard();
    return;
  }
  let created: Awaited<ReturnType<typeof createApiKey>>;
  try {
    // Imported here, on the first start only: the API's key module is not loaded by a node that never makes one.
    const { createApiKey } = await import('../api/auth.js');
    created = await createApiKey(store, { name: 'bootstrap-admin', scopes: ['admin'], now: clock(), ...(given ? { secret: given } : {}) });
  } catch (error) {
    out?.discard();
    // Nodes starting together on a shared store race to create the first key;
    // with DROVER_BOOTSTRAP_ADMIN_KEY they all insert the same one, and the
    // losers hit its unique hash. The key exists: that is all this step wants.
    if ((await store.listKeys()).length > 0) return;
    // Let the next start try at once rather than wait out the claim.
    await store.setMeta(BOOTSTRAP_CLAIM_KEY, JSON.stringify({ by: claim, at: 0 })).catch(() => undefined);
    throw error;
  }
  const { key, secret } = created;
  if (given) {
    print(`drover admin key ${key.id} created from DROVER_BOOTSTRAP_ADMIN_KEY`);
  } else if (out) {
    out.write(secret);
    print(`drover admin key ${key.id} written to ${out.path} (mode 0600; it is shown nowhere else)`);
  } else {
    print(`drover admin key (shown once; store it now): ${secret}`);
  }
}

/**
 * The file a generated first admin key goes to, created now (mode 0600,
 * refusing an existing file) so a failure stops the start before the key exists.
 */
function openKeyOutput(path: string): { path: string; write(secret: string): void; discard(): void } {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'EEXIST' ? 'it already exists (remove it, or name a new file)' : toError(error).message;
    throw new DroverError('config_invalid', `--admin-key-output ${path}: cannot create the file for the first admin key: ${why}`, { cause: error });
  }
  return {
    path,
    write(secret) {
      try {
        writeSync(fd, `${secret}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    },
    discard() {
      closeSync(fd);
      rmSync(path, { force: true });
    },
  };
}
