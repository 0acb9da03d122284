/**
 * Secrets from files, through the CLI: `*_FILE` variables fill the store URL,
 * the bootstrap admin key and the CLI's API key from files; a missing, an
 * unreadable (a directory) or an empty file, or both forms set, stop the
 * command at once (exit 78) naming the variable and the path. The first admin
 * key goes to a new 0600 file with `--admin-key-output`, never to stdout, and
 * an existing file is refused before any key is created.
 * Needs `npm run build` (runs bin/drover).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { api, killAllChildren, startChildNode } from '../helpers/child-node.js';
import { drover } from '../ops/cli.js';

const CONFIG = fileURLToPath(new URL('../fixtures/hello.config.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'drover-secret-files-'));
afterEach(killAllChildren);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function secret(name: string, value: string): string {
  const file = join(dir, name);
  writeFileSync(file, value, { mode: 0o600 });
  return file;
}

describe('*_FILE variables', () => {
  it('fill the store URL, the bootstrap key and the CLI key from files (one trailing newline dropped)', { timeout: 60_000 }, async () => {
    const db = join(dir, 'from-file', 'drover.db');
    const key = 'drv_secret_file_admin_key_0123456789';
    const node = await startChildNode({
      config: CONFIG,
      env: { DROVER_DATABASE_URL_FILE: secret('db-url', `${db}\n`), DROVER_BOOTSTRAP_ADMIN_KEY_FILE: secret('admin-key', `${key}\n`) },
    });
    expect((await api(node.url, key, 'GET', '/v1/status')).status).toBe(200);
    expect(existsSync(db)).toBe(true);
    const cli = await drover(['handlers', 'list'], { DROVER_URL: node.url, DROVER_API_KEY_FILE: secret('cli-key', key) });
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toContain('greet');
  });

  it('stop the command with the variable and the path named when the file is missing, unreadable or empty, or both forms are set', async () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ DROVER_DATABASE_URL_FILE: join(dir, 'nope') }, /DROVER_DATABASE_URL_FILE=\S+nope: cannot read the file: the file does not exist/],
      [{ DROVER_DATABASE_URL_FILE: dir }, new RegExp(`DROVER_DATABASE_URL_FILE=${dir}: cannot read the file: .*EISDIR`)],
      [{ DROVER_BOOTSTRAP_ADMIN_KEY_FILE: secret('empty', '\n') }, /DROVER_BOOTSTRAP_ADMIN_KEY_FILE=\S+empty: the file is empty/],
      [{ DROVER_API_KEY: 'x', DROVER_API_KEY_FILE: secret('k', 'y') }, /both DROVER_API_KEY and DROVER_API_KEY_FILE are set/],
    ];
    const results = await Promise.all(
      cases.map(([env]) => {
        const store: Record<string, string> = 'DROVER_DATABASE_URL_FILE' in env ? {} : { DROVER_DATABASE_URL: join(dir, 'never', 'drover.db') };
        return drover(['start', '--config', CONFIG, '--port', '0'], { ...store, ...env });
      }),
    );
    cases.forEach(([env, message], i) => {
      expect(results[i]!.code, JSON.stringify(env)).toBe(78);
      expect(results[i]!.stderr).toMatch(message);
    });
    expect(existsSync(join(dir, 'never'))).toBe(false);
  });
});

describe('--admin-key-output', () => {
  it('writes the first admin key to a new 0600 file and not to stdout', { timeout: 60_000 }, async () => {
    const out = join(dir, 'first-admin.key');
    const db = join(dir, 'keyfile', 'drover.db');
    const node = await startChildNode({ config: CONFIG, env: { DROVER_DATABASE_URL: db, DROVER_ADMIN_KEY_OUTPUT: out } });
    const key = readFileSync(out, 'utf8').trim();
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect((await api(node.url, key, 'GET', '/v1/status')).status).toBe(200);
    expect(node.stdout.join('\n')).not.toContain(key);
    expect(node.stdout.join('\n')).toMatch(new RegExp(`drover admin key key_\\w+ written to ${out} \\(mode 0600`));
  });

  it('refuses an existing file before creating any key', { timeout: 60_000 }, async () => {
    const out = secret('already-there.key', 'keep me');
    const db = join(dir, 'refused', 'drover.db');
    const result = await drover(['start', '--config', CONFIG, '--port', '0', '--admin-key-output', out], { DROVER_DATABASE_URL: db });
    expect(result.code).toBe(78);
    expect(result.stderr).toContain(`--admin-key-output ${out}: cannot create the file for the first admin key: it already exists`);
    expect(readFileSync(out, 'utf8')).toBe('keep me');
    const store = new Database(db, { readonly: true });
    try {
      expect(store.prepare('SELECT count(*) FROM api_keys').pluck().get()).toBe(0);
    } finally {
      store.close();
    }
  });
});
