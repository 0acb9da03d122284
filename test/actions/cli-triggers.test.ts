/**
 * `drover triggers` as a user types it, against a running node: create a
 * trigger of each new kind from JSON, list them with credentials redacted,
 * rotate a webhook's secret, delete; bad JSON and bad actions fail with the
 * API's message.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DROVER_BIN, killAllChildren, startChildNode, type ChildNode } from '../helpers/child-node.js';

const KEY = 'drv_cli_triggers_admin_key_00000000001';
const dir = mkdtempSync(join(tmpdir(), 'drover-cli-triggers-'));
let node: ChildNode;
beforeAll(async () => {
  const config = join(dir, 'drover.config.mjs');
  writeFileSync(config, "export default { handlers: [{ name: 'noop', run: () => null }], webhooks: { allowPrivateNetworks: true } };\n");
  node = await startChildNode({ config, cwd: dir, env: { DROVER_DATABASE_URL: join(dir, 'drover.db'), DROVER_BOOTSTRAP_ADMIN_KEY: KEY } });
}, 30_000);
afterAll(async () => {
  await killAllChildren();
  rmSync(dir, { recursive: true, force: true });
});

function drover(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [DROVER_BIN, ...args], { env: { ...process.env, DROVER_URL: node.url, DROVER_API_KEY: KEY }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve) => child.on('exit', (code) => {
    clearTimeout(timer);
    resolve({ code, stdout, stderr });
  }));
}

async function ok(args: string[]): Promise<any> {
  const result = await drover(args);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout);
}

describe('drover triggers', () => {
  it('creates each kind from JSON, lists them redacted, rotates a webhook secret, deletes', { timeout: 60_000 }, async () => {
    const telegram = await ok(['triggers', 'create', '--on', 'order.*', '--filter', '{"amount":{"$gt":100}}', '--action', '{"type":"telegram","token":{"value":"7000:cli-bot-token"},"chatId":42,"text":"order {{data.orderId}}"}']);
    const mcp = await ok(['triggers', 'create', '--on', 'payment.failed', '--action', '{"type":"mcp","url":"http://127.0.0.1:9/mcp","tool":"create_ticket","arguments":{"title":"{{data.orderId}}"},"auth":{"value":{"env":"DROVER_SECRET_TICKETS"}}}']);
    const http = await ok(['triggers', 'create', '--on', 'order.paid', '--action', '{"type":"http","url":"http://127.0.0.1:9/in","headers":{"Authorization":"Bearer cli-http-token"},"body":{"id":"{{data.orderId}}"}}']);
    const webhook = await ok(['triggers', 'create', '--on', 'order.paid', '--action', '{"type":"webhook","url":"http://127.0.0.1:9/hook"}']);
    expect(telegram.action.token).toEqual({ value: '[redacted]' });
    expect(telegram.filter).toEqual({ amount: { $gt: 100 } });
    expect(mcp.action.auth).toEqual({ header: 'Authorization', value: { env: 'DROVER_SECRET_TICKETS' } });
    expect(webhook.secret).toMatch(/^whsec_/);

    const listed = await ok(['triggers', 'list']);
    expect((listed.triggers as Array<{ id: string }>).map((t) => t.id).sort()).toEqual([telegram.id, mcp.id, http.id, webhook.id].sort());
    for (const secret of ['7000:cli-bot-token', 'cli-http-token', webhook.secret as string]) expect(JSON.stringify(listed)).not.toContain(secret);

    const rotated = await ok(['triggers', 'rotate-secret', webhook.id]);
    expect(rotated.action.secrets).toHaveLength(2);
    expect((await ok(['triggers', 'retire-secret', webhook.id])).retiredSecretId).toBe(webhook.action.secrets[0].id);
    expect((await ok(['triggers', 'delete', telegram.id])).deleted).toBe(true);
    expect(((await ok(['triggers', 'list'])).triggers as unknown[]).length).toBe(3);
  });

  it('refuses bad JSON before calling the node, and passes on the API\'s refusal', { timeout: 30_000 }, async () => {
    const badJson = await drover(['triggers', 'create', '--on', 'a.b', '--action', '{type: telegram}']);
    expect(badJson.code).not.toBe(0);
    expect(badJson.stderr).toContain('--action: not JSON');
    const refused = await drover(['triggers', 'create', '--on', 'a.b', '--action', '{"type":"telegram","token":{"env":"DROVER_DATABASE_URL"},"chatId":1,"text":"x"}']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('422');
  });
});
