/**
 * Losing PostgreSQL under a running node: the node reports not-ready while
 * the database is unreachable, refuses intake with 503 (clients retry), keeps
 * retrying with backoff, and once the database is back it resumes and loses
 * nothing it had accepted.
 *
 * The outage is simulated with a TCP proxy in front of the shared server that
 * drops every connection and refuses new ones (the shared server itself must
 * not be restarted by a test).
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';
import { PG_URL } from './cluster.js';
import { completedTwice } from '../helpers/pg-attempts.js';

/** Forwards to the PostgreSQL of PG_URL until `cut()`, which drops every connection and refuses new ones until `restore()`. */
class CuttableProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #cut = false;

  constructor(target: { host: string; port: number }) {
    this.#server = net.createServer((client) => {
      if (this.#cut) {
        client.destroy();
        return;
      }
      const upstream = net.connect(target.port, target.host);
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => {
          this.#sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return (this.#server.address() as net.AddressInfo).port;
  }

  cut(): void {
    this.#cut = true;
    for (const socket of this.#sockets) socket.destroy();
  }

  restore(): void {
    this.#cut = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

const JOBS = 300;
const schema = `drover_cl_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
const target = new URL(PG_URL);
const proxy = new CuttableProxy({ host: target.hostname, port: Number(target.port || 5432) });
const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
admin.on('error', () => undefined);
let node: TestNode | undefined;
const runs = new Map<string, number>();

beforeAll(async () => {
  await admin.query('SELECT 1').catch((error: Error) => {
    throw new Error(`PostgreSQL is not reachable at ${PG_URL} (${error.message})`);
  });
  const port = await proxy.listen();
  const viaProxy = new URL(PG_URL);
  viaProxy.port = String(port);
  node = await startTestNode({
    databaseUrl: viaProxy.toString(),
    postgres: { schema },
    handlers: [
      {
        name: 'work',
        concurrency: 5,
        async run(ctx) {
          runs.set(ctx.job.id, (runs.get(ctx.job.id) ?? 0) + 1);
          await new Promise((resolve) => setTimeout(resolve, 10));
        },
      },
    ],
  } as Parameters<typeof startTestNode>[0]);
});

afterAll(async () => {
  proxy.restore();
  await node?.close();
  await proxy.close();
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
});

const ready = async () => (await node!.request('GET', '/health/ready')).status;
const succeeded = async () =>
  Number((await admin.query(`SELECT count(*)::int AS n FROM ${schema}.jobs WHERE state = 'succeeded'`)).rows[0].n);

describe('losing the PostgreSQL connection', () => {
  it('reports not-ready and refuses intake while PostgreSQL is unreachable, then resumes and loses nothing', { timeout: 90_000 }, async () => {
    expect(await ready()).toBe(200);
    const accepted = await node!.request('POST', '/v1/jobs', { jobs: Array.from({ length: JOBS }, (_, n) => ({ handler: 'work', payload: { n } })) });
    expect(accepted.status).toBe(202);
    const ids: string[] = accepted.body.jobs.map((j: { id: string }) => j.id);
    await waitFor(async () => (await succeeded()) >= JOBS / 4, { timeoutMs: 30_000, message: 'a quarter of the jobs done' });

    proxy.cut();
    await waitFor(async () => (await ready()) === 503, { timeoutMs: 15_000, message: '/health/ready answers 503' });
    const probe = await node!.request('GET', '/health/ready');
    expect(JSON.stringify(probe.body)).toMatch(/store/);
    const refused = await node!.request('POST', '/v1/jobs', { handler: 'work' });
    expect(refused.status).toBe(503);
    expect(refused.headers['content-type']).toMatch(/application\/problem\+json/);
    // Liveness is not the database's business.
    expect((await node!.request('GET', '/health/live')).status).toBe(200);
    // Keep the outage up until the dispatcher and the heartbeat have failed and are retrying.
    const logged = (prefix: string) => node!.logLines.some((l) => typeof l.msg === 'string' && l.msg.startsWith(prefix));
    await waitFor(() => logged('lease failed') && node!.logLines.some((l) => l.task === 'heartbeat'), {
      timeoutMs: 15_000,
      message: 'the dispatcher and the heartbeat failed and are retrying',
    });

    proxy.restore();
    await waitFor(async () => (await ready()) === 200, { timeoutMs: 30_000, intervalMs: 50, message: '/health/ready is 200 again' });
    await waitFor(async () => (await succeeded()) === JOBS, { timeoutMs: 60_000, intervalMs: 50, message: `all ${JOBS} accepted jobs succeeded` });

    for (const id of ids) expect(runs.get(id) ?? 0, `job ${id} ran`).toBeGreaterThanOrEqual(1);
    const twice = await admin.query(completedTwice(schema));
    expect(twice.rows).toEqual([]);
  });
});
