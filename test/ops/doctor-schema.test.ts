/**
 * `drover doctor` on a store a newer Drover migrated: the advice must be one
 * that works (upgrade, or restore), not `drover migrate`, which cannot go back.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.js';
import { DROVER_BIN } from '../helpers/child-node.js';

const run = promisify(execFile);
const CONFIG = fileURLToPath(new URL('../fixtures/hello.config.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'drover-doctor-schema-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('drover doctor on a schema newer than the binary', () => {
  it('fails the migrations check and advises an upgrade or a restore, not drover migrate', { timeout: 60_000 }, async () => {
    const db = join(dir, 'drover.db');
    const store = await openStore(db);
    await store.migrate();
    await store.close();
    const raw = new Database(db);
    raw.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, ?, ?)').run('from_the_future', Date.now());
    raw.close();

    const result = await run(process.execPath, [DROVER_BIN, 'doctor', '--config', CONFIG, '--json'], { env: { ...process.env, DROVER_DATABASE_URL: db, DROVER_URL: 'http://127.0.0.1:9' }, timeout: 60_000 }).then(
      (r) => ({ code: 0, stdout: r.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
    );
    expect(result.code).toBe(1);
    const migrations = (JSON.parse(result.stdout) as { checks: Array<{ id: string; status: string; detail: string; fix?: string }> }).checks.find((c) => c.id === 'migrations');
    expect(migrations).toMatchObject({ status: 'fail', detail: expect.stringContaining('schema version 999') });
    expect(migrations?.fix).toMatch(/upgrade this node .* or restore a backup/);
    expect(migrations?.fix).not.toMatch(/drover migrate/);
  });
});
