/**
 * Forged backups, attacked through the CLI: a backup's manifest is signed by
 * the audit key of the node that took it, and `drover backup verify|restore`
 * trust only keys the node already trusts or keys an operator names by
 * fingerprint. A copy whose database was swapped (the victim's signature no
 * longer verifies) and a copy re-signed by an attacker who lists their own key
 * both fail verify; restore refuses the attacker's backup until its key is
 * named, and then trusts that key alone, not every key the manifest lists.
 * Needs `npm run build` (runs bin/drover).
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditTrail } from '../../src/ops/audit/audit-trail.js';
import { ephemeralNodeKey, loadOrCreateNodeKey, type NodeKey } from '../../src/ops/audit/node-key.js';
import { sha256File } from '../../src/ops/backup/checksum.js';
import { takeBackup } from '../../src/ops/backup/create.js';
import { MANIFEST_FILE } from '../../src/ops/backup/manifest.js';
import { signManifest } from '../../src/ops/backup/manifest-signature.js';
import { openSqliteEngine } from '../../src/store/sqlite/sqlite-engine.js';
import { drover } from './cli.js';

const dir = mkdtempSync(join(tmpdir(), 'drover-backup-trust-'));
const victim = join(dir, 'victim');
const attackerDir = join(dir, 'attacker');
let victimKey: NodeKey;
let attackerKey: NodeKey;
let genuine: string;
let attackerBackup: string;
const env = { DROVER_DATABASE_URL: join(victim, 'drover.db') };

/** A store with one audit record, backed up and signed by the key in `dataDir`. */
async function storeWithBackup(dataDir: string, actor: string): Promise<{ key: NodeKey; path: string }> {
  const store = await openSqliteEngine({ path: join(dataDir, 'drover.db') });
  try {
    await store.migrate();
    const key = loadOrCreateNodeKey(dataDir);
    await new AuditTrail({ store, key }).record({ actor, action: 'key.create', target: `key:${actor}` });
    const { path } = await takeBackup({ store, outDir: join(dataDir, 'backups'), source: 'x', auditKeys: [{ keyId: key.keyId, publicKey: key.publicPem }], signingKey: key });
    return { key, path };
  } finally {
    await store.close();
  }
}

beforeAll(async () => {
  ({ key: victimKey, path: genuine } = await storeWithBackup(victim, 'ops'));
  ({ key: attackerKey, path: attackerBackup } = await storeWithBackup(attackerDir, 'intruder'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const manifestOf = (path: string) => JSON.parse(readFileSync(join(path, MANIFEST_FILE), 'utf8'));

describe('a forged backup', () => {
  it('whose database was swapped fails verify: the victim\'s signature no longer covers it', async () => {
    const forged = join(dir, 'swapped');
    cpSync(genuine, forged, { recursive: true });
    cpSync(join(attackerDir, 'drover.db'), join(forged, 'drover.db'));
    const m = manifestOf(forged);
    m.files[0].sha256 = await sha256File(join(forged, 'drover.db'));
    m.files[0].bytes = readFileSync(join(forged, 'drover.db')).length;
    writeFileSync(join(forged, MANIFEST_FILE), JSON.stringify(m));

    const ok = await drover(['backup', 'verify', genuine], env);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`ok    signature: signed by ${victimKey.keyId}`);
    const result = await drover(['backup', 'verify', forged], env);
    expect(result.code).not.toBe(0);
    expect(result.stdout).toContain(`FAIL  signature: the signature by ${victimKey.keyId} does not verify: the manifest was changed after it was signed`);
  });

  it('re-signed by an attacker fails verify, and restore refuses it until the attacker key is named, then trusts only that key', async () => {
    // The attacker's own store (their admin keys, their audit trail), dressed as a backup of this node.
    const forged = join(dir, 'resigned');
    cpSync(attackerBackup, forged, { recursive: true });
    const extra = ephemeralNodeKey(); // listed too, never named: must not become trusted
    const m = manifestOf(forged);
    delete m.signature;
    m.source = manifestOf(genuine).source;
    m.auditKeys = [{ keyId: attackerKey.keyId, publicKey: attackerKey.publicPem }, { keyId: extra.keyId, publicKey: extra.publicPem }];
    writeFileSync(join(forged, MANIFEST_FILE), JSON.stringify(signManifest(m, attackerKey)));

    const verified = await drover(['backup', 'verify', forged], env);
    expect(verified.code).not.toBe(0);
    expect(verified.stdout).toContain(`FAIL  signature: signed by ${attackerKey.keyId}, a key this node does not trust`);
    expect(verified.stdout).toMatch(/^FAIL {2}audit trail: record 1: signed by ed25519:\w+, which this node does not trust/m);
    expect(verified.stdout).toContain(`new key ${attackerKey.keyId} (signed the manifest): not trusted here; pass --trust-key ${attackerKey.keyId}`);

    const before = await sha256File(env.DROVER_DATABASE_URL);
    const refused = await drover(['backup', 'restore', forged], env);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('did not verify, nothing was changed');
    expect(refused.stderr).toContain(`pass --trust-new-key ${attackerKey.keyId}`);
    expect(await sha256File(env.DROVER_DATABASE_URL)).toBe(before);
    expect(existsSync(join(victim, 'audit-trusted-keys'))).toBe(false);

    const wrongName = await drover(['backup', 'restore', forged, '--trust-new-key', 'ed25519:0000000000000000'], env);
    expect(wrongName.code).not.toBe(0);
    expect(wrongName.stderr).toContain('the backup carries no such key');

    // An operator who names the key gets what they asked for: that key, and no other the manifest lists.
    const restored = await drover(['backup', 'restore', forged, '--trust-new-key', attackerKey.keyId], env);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toContain(`now trusting audit key ${attackerKey.keyId} (named by --trust-new-key)`);
    expect(readdirSync(join(victim, 'audit-trusted-keys'))).toEqual([`${attackerKey.keyId.replace(/[^A-Za-z0-9]/g, '-')}.pem`]);
    expect(restored.stdout).not.toContain(extra.keyId);
  });

  it('verifies with a key given as a public key file', async () => {
    const pub = join(dir, 'victim.pub');
    writeFileSync(pub, victimKey.publicPem);
    const elsewhere = { DROVER_DATABASE_URL: join(dir, 'elsewhere', 'drover.db') };
    expect((await drover(['backup', 'verify', genuine], elsewhere)).code).not.toBe(0);
    const result = await drover(['backup', 'verify', genuine, '--trust-key', pub], elsewhere);
    expect(result.code, result.stdout + result.stderr).toBe(0);
  });
});
