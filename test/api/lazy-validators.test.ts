/**
 * Route schemas compile at their first request (src/api/lazy-validators.ts),
 * not when the server gets ready: a node starts without the ~56 Ajv compiles.
 * What a request sees is the same: a body that fails its schema is refused
 * with every error Ajv found. Every schema the real API registers compiles.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { lazyValidators } from '../../src/api/lazy-validators.js';
import { buildServer } from '../../src/api/server.js';
import { resolveConfig } from '../../src/core/config.js';
import { AuditTrail } from '../../src/ops/audit/audit-trail.js';
import { ephemeralNodeKey } from '../../src/ops/audit/node-key.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { openStore } from '../../src/store/open.js';
import { closeRuntimesAfterEach } from '../helpers/runtimes.js';

const open = closeRuntimesAfterEach();

describe('route schemas compiled at first use', () => {
  it('compiles none at ready, one at its first request, and answers as Ajv would', async () => {
    const validators = lazyValidators();
    const app = Fastify({ ajv: { customOptions: { allErrors: true, coerceTypes: false } }, schemaController: { compilersFactory: { buildValidator: validators.buildValidator } } });
    const body = { type: 'object', required: ['name', 'size'], additionalProperties: false, properties: { name: { type: 'string', minLength: 2 }, size: { type: 'integer' } } };
    app.post('/a', { schema: { body } }, async (request) => request.body);
    app.post('/b', { schema: { body } }, async (request) => request.body);
    await app.ready();
    try {
      const bad = await app.inject({ method: 'POST', url: '/a', payload: { name: 'x', size: '3' } });
      expect(bad.statusCode).toBe(400);
      // allErrors: both faults, as the eager compiler reported them.
      expect(bad.json().message).toMatch(/body\/name must NOT have fewer than 2 characters, body\/size must be integer/);
      const good = await app.inject({ method: 'POST', url: '/a', payload: { name: 'xy', size: 3 } });
      expect(good.json()).toEqual({ name: 'xy', size: 3 });
      // /a compiled at its first request; /b has had none.
      expect(validators.compileAll()).toBe(1);
      expect(validators.compileAll()).toBe(0);
    } finally {
      await app.close();
    }
  });

  it('every schema of the real API compiles, and none did at start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-lazy-schemas-'));
    const config = resolveConfig({ databaseUrl: join(dir, 'drover.db'), handlers: [{ name: 'h', run: async () => undefined }] }, {});
    const store = await openStore(config.databaseUrl, {});
    await store.migrate();
    const audit = new AuditTrail({ store, key: ephemeralNodeKey(), clock: Date.now });
    const runtime = new Runtime({ config, store, logger: pino({ level: 'silent' }), workerId: 'node-a', audit });
    open.push({ runtime, store, dir });
    const validators = lazyValidators();
    const app = await buildServer({ runtime, validators });
    try {
      await app.ready();
      expect(validators.compileAll()).toBeGreaterThan(40);
    } finally {
      await app.close();
    }
  });
});
