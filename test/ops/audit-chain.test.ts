/**
 * The audit chain catches tampering: an edited, a deleted and two reordered
 * records are each detected and named, in an export file and in the store;
 * a record signed by an unknown key fails; truncating the store's trail is
 * caught by comparing with the export.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditTrail } from '../../src/ops/audit/audit-trail.js';
import { canonicalJson } from '../../src/ops/audit/canonical.js';
import { GENESIS_HASH } from '../../src/ops/audit/chain.js';
import { AuditExporter, exportFiles } from '../../src/ops/audit/export.js';
import { ephemeralNodeKey, KEY_FILE, loadOrCreateNodeKey, trustedKeys } from '../../src/ops/audit/node-key.js';
import { missingFromStore, supersededExports } from '../../src/ops/audit/export-diff.js';
import { RESTORE_MARKER, writeRestoreMarker } from '../../src/ops/audit/restore-marker.js';
import { compareWithExport, verifyExportFiles, verifyStoredTrail } from '../../src/ops/audit/verify.js';
import { openSqliteEngine, type SqliteEngine } from '../../src/store/sqlite/sqlite-engine.js';

let dir: string;
let store: SqliteEngine;
let trail: AuditTrail;
let now: number;
const T0 = Date.parse('2026-03-01T10:00:00Z');

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'drover-audit-'));
  now = T0;
  store = await openSqliteEngine({ path: join(dir, 'drover.db') });
  await store.migrate();
  trail = new AuditTrail({ store, key: loadOrCreateNodeKey(dir), clock: () => now });
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function recordSome(n: number): Promise<void> {
  for (let i = 1; i <= n; i++) {
    now += 1000;
    await trail.record({ actor: 'key_abc', requestId: `req-${i}`, action: 'job.cancel', target: `job:${i}`, before: { state: 'queued', tags: ['a', i] }, after: { state: 'cancelled' } });
  }
}

async function exportTo(exportDir: string): Promise<string> {
  const exporter = new AuditExporter({ store, dir: exportDir, keepFiles: 30, intervalMs: 60_000, clock: () => now, onError: (e) => { throw e; } });
  await exporter.flush();
  const [file] = exportFiles(exportDir);
  return file!;
}

const keys = () => trustedKeys(dir);
const lines = (file: string) => readFileSync(file, 'utf8').trimEnd().split('\n');

describe('signing key', () => {
  it('is created once with mode 0600 and reused', () => {
    const file = join(dir, KEY_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(loadOrCreateNodeKey(dir).keyId).toBe(trail.key.keyId);
    expect(trail.key.keyId).toMatch(/^ed25519:[0-9a-f]{16}$/);
  });

  it('refuses a key file others can read', () => {
    const other = mkdtempSync(join(tmpdir(), 'drover-key-'));
    try {
      loadOrCreateNodeKey(other);
      chmodSync(join(other, KEY_FILE), 0o644);
      expect(() => loadOrCreateNodeKey(other)).toThrow(/chmod 600/);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});

describe('the chain in the store', () => {
  it('links each record to the one before and verifies whole', async () => {
    await recordSome(5);
    const records = await store.readAudit({ limit: 10 });
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(records[0]!.prevHash).toBe(GENESIS_HASH);
    expect(records[3]!.prevHash).toBe(records[2]!.hash);
    expect(records[2]).toMatchObject({ actor: 'key_abc', requestId: 'req-3', target: 'job:3', before: { state: 'queued', tags: ['a', 3] }, time: new Date(T0 + 3000).toISOString() });
    const report = await verifyStoredTrail(store, keys());
    expect(report).toMatchObject({ ok: true, records: 5, firstSeq: 1, lastSeq: 5, fault: null, signers: [trail.key.keyId] });
  });

  const raw = () => new Database(join(dir, 'drover.db'));

  it('detects an edited record and names it', async () => {
    await recordSome(5);
    const db = raw();
    db.prepare("UPDATE audit_log SET actor = 'key_someone_else' WHERE seq = 3").run();
    db.close();
    const report = await verifyStoredTrail(store, keys());
    expect(report.ok).toBe(false);
    expect(report.fault).toMatchObject({ seq: 3, reason: expect.stringMatching(/edited/) });
  });

  it('detects an edit whose hash was recomputed (the signature no longer matches)', async () => {
    await recordSome(3);
    const [, second] = await store.readAudit({ limit: 3 });
    const forged = { ...second!, after: { state: 'succeeded' } };
    const { hashRecord } = await import('../../src/ops/audit/chain.js');
    const db = raw();
    db.prepare('UPDATE audit_log SET after_json = ?, hash = ? WHERE seq = 2').run(JSON.stringify(forged.after), hashRecord(forged));
    db.close();
    const report = await verifyStoredTrail(store, keys());
    expect(report.fault).toMatchObject({ seq: 2, reason: expect.stringMatching(/signature does not verify/) });
  });

  it('detects a deleted record and names the one after the gap', async () => {
    await recordSome(5);
    const db = raw();
    db.prepare('DELETE FROM audit_log WHERE seq = 2').run();
    db.close();
    const report = await verifyStoredTrail(store, keys());
    expect(report.fault).toMatchObject({ seq: 3, reason: 'record 3 follows record 1: record 2 is missing' });
  });

  it('detects two records swapped', async () => {
    await recordSome(5);
    const db = raw();
    db.transaction(() => {
      db.prepare('UPDATE audit_log SET seq = -1 WHERE seq = 2').run();
      db.prepare('UPDATE audit_log SET seq = 2 WHERE seq = 3').run();
      db.prepare('UPDATE audit_log SET seq = 3 WHERE seq = -1').run();
    })();
    db.close();
    const report = await verifyStoredTrail(store, keys());
    expect(report.fault).toMatchObject({ seq: 2, reason: expect.stringMatching(/prevHash does not match the hash of record 1/) });
  });

  it('detects a missing first record and a record signed by an unknown key', async () => {
    await recordSome(2);
    const stranger = new AuditTrail({ store, key: ephemeralNodeKey(), clock: () => now });
    await stranger.record({ actor: 'key_x', action: 'key.revoke', target: 'key:key_y' });
    const report = await verifyStoredTrail(store, keys());
    expect(report.fault).toMatchObject({ seq: 3, reason: expect.stringMatching(/not a trusted key/) });
    expect((await verifyStoredTrail(store, new Map([...keys(), [stranger.key.keyId, stranger.key.publicKey]]))).ok).toBe(true);

    const db = raw();
    db.prepare('DELETE FROM audit_log WHERE seq = 1').run();
    db.close();
    expect((await verifyStoredTrail(store, keys())).fault).toMatchObject({ seq: 2, reason: expect.stringMatching(/starts at record 2/) });
  });
});

describe('export files', () => {
  it('verify whole, and each of edit, delete and reorder is detected and named by line', async () => {
    await recordSome(6);
    const file = await exportTo(join(dir, 'audit'));
    expect(file).toMatch(/audit-2026-03-01\.jsonl$/);
    expect(verifyExportFiles([file], keys())).toMatchObject({ ok: true, records: 6, lastSeq: 6 });

    const original = lines(file);
    const write = (content: string[]) => writeFileSync(file, `${content.join('\n')}\n`);

    const edited = [...original];
    const record = JSON.parse(edited[3]!);
    record.target = 'job:999';
    edited[3] = JSON.stringify(record);
    write(edited);
    expect(verifyExportFiles([file], keys()).fault).toMatchObject({ seq: 4, position: 4, source: file, reason: expect.stringMatching(/edited/) });

    write(original.filter((_, i) => i !== 2));
    expect(verifyExportFiles([file], keys()).fault).toMatchObject({ seq: 4, position: 3, reason: 'record 4 follows record 2: record 3 is missing' });

    const reordered = [...original];
    [reordered[1], reordered[2]] = [reordered[2]!, reordered[1]!];
    write(reordered);
    expect(verifyExportFiles([file], keys()).fault).toMatchObject({ seq: 3, position: 2, reason: 'record 3 follows record 1: record 2 is missing' });

    write([...original.slice(0, 2), '{"not": "a record"', ...original.slice(2)]);
    expect(verifyExportFiles([file], keys()).fault).toMatchObject({ position: 3, reason: expect.stringMatching(/^not a record/) });

    // Key order does not matter: the hash is over canonical JSON.
    write(original.map((line) => canonicalJson(JSON.parse(line))));
    expect(verifyExportFiles([file], keys()).ok).toBe(true);
  });

  it('rotates by day, keeps the newest files, and resumes where it left off', async () => {
    const exportDir = join(dir, 'audit');
    const exporter = new AuditExporter({ store, dir: exportDir, keepFiles: 2, intervalMs: 60_000, clock: () => now, onError: (e) => { throw e; } });
    for (let day = 0; day < 4; day++) {
      await recordSome(2);
      expect(await exporter.flush()).toBe(2);
      now += 86_400_000;
    }
    const files = exportFiles(exportDir);
    expect(files.map((f) => basename(f))).toEqual(['audit-2026-03-03.jsonl', 'audit-2026-03-04.jsonl']);
    // Older files rotated away: the chain is checked from where the files begin.
    expect(verifyExportFiles(files, keys())).toMatchObject({ ok: true, records: 4, firstSeq: 5, lastSeq: 8, anchored: true });

    // A new exporter (a restart) continues after the last exported record, repairing a half-written line.
    writeFileSync(files[1]!, `${readFileSync(files[1]!, 'utf8')}{"seq":9,"ti`);
    await recordSome(1);
    const restarted = new AuditExporter({ store, dir: exportDir, keepFiles: 2, intervalMs: 60_000, clock: () => now, onError: (e) => { throw e; } });
    expect(await restarted.flush()).toBe(1);
    expect(verifyExportFiles(exportFiles(exportDir), keys())).toMatchObject({ ok: true, lastSeq: 9 });
  });

  it('shows records cut off the end of the store, and a store record that differs from its copy', async () => {
    await recordSome(4);
    const file = await exportTo(join(dir, 'audit'));
    const db = new Database(join(dir, 'drover.db'));
    db.prepare('DELETE FROM audit_log WHERE seq = 4').run();
    db.close();
    // The store's chain alone still verifies: the cut is only visible against the export.
    const report = await verifyStoredTrail(store, keys());
    expect(report).toMatchObject({ ok: true, lastSeq: 3 });
    const comparison = await compareWithExport(store, report.lastSeq, [file]);
    expect(comparison.ok).toBe(false);
    expect(comparison.problem).toMatch(/export holds records up to 4 .* store's trail ends at 3/);

    await recordSome(1); // a new record 4, not the exported one
    const again = await compareWithExport(store, 4, [file]);
    expect(again.problem).toMatch(/record 4 in the store differs from the exported copy/);
  });

  it('refuses to go on when records were cut off the store and no restore was recorded', async () => {
    await recordSome(3);
    const exportDir = join(dir, 'audit');
    await exportTo(exportDir);
    const db = new Database(join(dir, 'drover.db'));
    db.prepare('DELETE FROM audit_log WHERE seq >= 2').run();
    db.close();
    await recordSome(1);
    const refusals: string[] = [];
    const exporter = new AuditExporter({ store, dir: exportDir, dataDir: dir, keepFiles: 30, intervalMs: 60_000, clock: () => now, onError: (e) => { throw e; }, onRefused: (p) => refusals.push(p) });
    expect(await exporter.flush()).toBe(0);
    expect(await exporter.flush()).toBe(0);
    expect(refusals).toHaveLength(1); // logged once per episode, not every minute
    expect(refusals[0]).toMatch(/record 3\b.*no restore was recorded/);
    expect(exporter.status()).toMatchObject({ state: 'refused', exportedSeq: 3, superseded: 0 });
    // The export is left as it was: the evidence of records 2 and 3.
    expect(verifyExportFiles(exportFiles(exportDir), keys())).toMatchObject({ ok: true, firstSeq: 1, lastSeq: 3 });
    const { missing } = await missingFromStore(store, exportFiles(exportDir));
    expect(missing.map((r) => r.seq)).toEqual([2, 3]);

    // A marker that names a record the store does not hold (forged, or stale) does not help.
    writeRestoreMarker(dir, { seq: 2, hash: 'f'.repeat(64), at: new Date(now).toISOString(), backup: '/nowhere' });
    expect(await exporter.flush()).toBe(0);
    expect(exporter.status().state).toBe('refused');
  });

  it('sets the export aside and starts over after a recorded restore, and says what the old export held', async () => {
    await recordSome(3);
    const exportDir = join(dir, 'audit');
    await exportTo(exportDir);
    const db = new Database(join(dir, 'drover.db'));
    db.prepare('DELETE FROM audit_log WHERE seq >= 2').run();
    db.close();
    const restore = await trail.record({ actor: 'cli:ops@box', action: 'backup.restore', target: 'store:x' });
    writeRestoreMarker(dir, { seq: restore.seq, hash: restore.hash, at: restore.time, backup: '/backups/b1' });
    const exporter = new AuditExporter({ store, dir: exportDir, dataDir: dir, keepFiles: 30, intervalMs: 60_000, clock: () => now, onError: (e) => { throw e; } });
    expect(await exporter.flush()).toBe(2);
    expect(exporter.status()).toMatchObject({ state: 'ok', exportedSeq: 2, superseded: 1 });
    expect(verifyExportFiles(exportFiles(exportDir), keys())).toMatchObject({ ok: true, firstSeq: 1, lastSeq: 2 });
    expect(existsSync(join(dir, RESTORE_MARKER))).toBe(false); // used once
    const [old] = await supersededExports(store, exportDir);
    expect(old!.restore).toMatchObject({ seq: 2, backup: '/backups/b1' });
    expect(old!.missing.map((r) => r.seq)).toEqual([2, 3]);
  });
});
