/**
 * `drover audit` and `drover backup prune|list` as an operator runs them:
 * exit codes, and output that names what is wrong.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupName, MANIFEST_FILE } from '../../src/ops/backup/manifest.js';
import { drover } from './cli.js';

const dir = mkdtempSync(join(tmpdir(), 'drover-ops-cli-'));
const env = { DROVER_DATABASE_URL: join(dir, 'data', 'drover.db') };
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(async () => {
  // Three operator actions from the CLI: two keys created, one revoked.
  const a = await drover(['keys', 'create', '--name', 'a', '--scopes', 'admin', '--json'], env);
  expect(a.code, a.stderr).toBe(0);
  await drover(['keys', 'create', '--name', 'b', '--json'], env);
  await drover(['keys', 'revoke', JSON.parse(a.stdout).id], env);
}, 60_000);

describe('drover audit', () => {
  it('pubkey prints the PEM that verifies the trail; list prints the records; verify passes', async () => {
    const pub = await drover(['audit', 'pubkey'], env);
    expect(pub.code).toBe(0);
    expect(pub.stdout).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
    writeFileSync(join(dir, 'node.pub'), pub.stdout);

    const list = await drover(['audit', 'list'], env);
    const records = list.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(records.map((r) => r.action)).toEqual(['key.create', 'key.create', 'key.revoke']);
    expect(records[0].actor).toMatch(/^cli:.+@.+$/);

    const ok = await drover(['audit', 'verify'], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^ok: store: 3 records \(records 1–3\), chain and signatures intact; signed by ed25519:[0-9a-f]{16}$/m);
  });

  it('verify exits 1 naming the first bad record, in the store and in a file; --pubkey lets another box verify', async () => {
    const db = new Database(env.DROVER_DATABASE_URL);
    const rows = db.prepare('SELECT * FROM audit_log ORDER BY seq').all() as Array<Record<string, unknown>>;
    db.prepare("UPDATE audit_log SET after_json = '{\"name\":\"evil\"}' WHERE seq = 2").run();
    const broken = await drover(['audit', 'verify', '--db'], env);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toBe('drover: audit trail broken at record 2 (store): hash does not match the record\'s contents: the record was edited\n');
    db.prepare('UPDATE audit_log SET after_json = ? WHERE seq = 2').run(rows[1]!.after_json);
    db.close();

    // An export file checked on another machine, which has only the public key.
    const lines = (await drover(['audit', 'list'], env)).stdout.trim().split('\n');
    const file = join(dir, 'audit-2026-01-01.jsonl');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const elsewhere = { DROVER_DATABASE_URL: join(dir, 'elsewhere', 'drover.db') };
    expect((await drover(['audit', 'verify', file], elsewhere)).stderr).toMatch(/no trusted keys/);
    const good = await drover(['audit', 'verify', file, '--pubkey', join(dir, 'node.pub')], elsewhere);
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout).toMatch(/^ok: 1 file\(s\): 3 records/);

    writeFileSync(file, `${[lines[0], lines[2]].join('\n')}\n`);
    const gap = await drover(['audit', 'verify', file, '--pubkey', join(dir, 'node.pub')], elsewhere);
    expect(gap.code).toBe(1);
    expect(gap.stderr).toContain(`audit trail broken at record 3 (${file}:2): record 3 follows record 1: record 2 is missing`);
  });
});

describe('drover backup prune and list', () => {
  it('prints the plan, deletes only with --yes', async () => {
    const backups = join(dir, 'data', 'backups');
    for (const day of ['2026-10-01', '2026-11-01', '2026-11-22', '2026-11-23']) {
      const p = join(backups, backupName(Date.parse(`${day}T04:00:00Z`)));
      mkdirSync(p, { recursive: true });
      writeFileSync(join(p, MANIFEST_FILE), '{}');
    }
    const dry = await drover(['backup', 'prune', '--keep-daily', '1', '--keep-weekly', '0', '--keep-monthly', '1'], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('keep    drover-backup-2026-11-23T04-00-00-000Z  (newest, daily 2026-11-23, monthly 2026-11)');
    expect(dry.stdout).toContain('delete  drover-backup-2026-10-01T04-00-00-000Z');
    expect(dry.stdout).toContain('dry run: 3 backup(s) would be deleted; run again with --yes to delete them');
    expect((await drover(['backup', 'list'], env)).stdout.trim().split('\n')).toHaveLength(4);

    const real = await drover(['backup', 'prune', '--keep-daily', '1', '--keep-weekly', '0', '--keep-monthly', '1', '--yes'], env);
    expect(real.stdout).toContain('deleted drover-backup-2026-11-22T04-00-00-000Z');
    expect((await drover(['backup', 'list'], env)).stdout.trim().split('\n')).toHaveLength(1);
    expect((await drover(['backup', 'prune', '--keep-daily', 'x'], env)).code).not.toBe(0);
  });

  it('create refuses a store that does not exist rather than creating an empty one', async () => {
    const res = await drover(['backup', 'create'], { DROVER_DATABASE_URL: join(dir, 'nope', 'drover.db') });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/there is no store at .*nope\/drover\.db/);
    expect(() => readFileSync(join(dir, 'nope', 'drover.db'))).toThrow();
  });
});
