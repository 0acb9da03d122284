/**
 * `/console`: the web console's static files (built by `npm run build` into
 * `dist/console`), read once when the server is built. Hashed assets are
 * immutable for a year; `index.html` is revalidated on every load so a new
 * build is picked up at once. A strict Content-Security-Policy: scripts and
 * styles from this origin only, no inline script, nothing framed, requests
 * to this origin only. The console talks to the public `/v1` API like any
 * other client.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { DroverError } from '../../core/errors.js';

/** Where the build puts the console, from this file in `src/` (tsx, tests) and in `dist/` alike. */
export const CONSOLE_DIST = fileURLToPath(new URL('../../../dist/console/', import.meta.url));

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

interface Asset {
  body: Buffer;
  type: string;
  immutable: boolean;
}

/** Every file of the build by URL path below `/console/`. */
function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const walk = (sub: string) => {
    for (const name of readdirSync(join(dir, sub))) {
      const rel = sub ? `${sub}/${name}` : name;
      if (statSync(join(dir, rel)).isDirectory()) walk(rel);
      else assets.set(rel, { body: readFileSync(join(dir, rel)), type: TYPES[extname(name)] ?? 'application/octet-stream', immutable: rel.startsWith('assets/') });
    }
  };
  if (existsSync(join(dir, 'index.html'))) walk('');
  return assets;
}

/**
 * @example
 * if (config.console.enabled) await app.register(consoleRoutes()); // serves dist/console at /console/
 */
export function consoleRoutes(dir: string = CONSOLE_DIST) {
  const assets = loadAssets(dir);
  const send = (reply: FastifyReply, asset: Asset) =>
    reply
      .header('content-type', asset.type)
      .header('cache-control', asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .send(asset.body);

  return async function plugin(app: FastifyInstance): Promise<void> {
    app.addHook('onRequest', async (request, reply) => {
      if (!request.url.startsWith('/console')) return;
      reply.header('content-security-policy', CONSOLE_CSP);
      reply.header('x-frame-options', 'DENY');
      reply.header('cross-origin-opener-policy', 'same-origin');
    });
    const index = () => {
      const page = assets.get('index.html');
      if (!page) throw new DroverError('not_found', 'the console is not built: run `npm run build` in the Drover checkout, then restart the node');
      return page;
    };
    app.get('/console', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/console/', 302));
    app.get('/console/', { schema: { hide: true } }, async (_request, reply) => send(reply, index()));
    app.get<{ Params: { '*': string } }>('/console/*', { schema: { hide: true } }, async (request, reply) => {
      const asset = assets.get(request.params['*']);
      if (!asset) throw new DroverError('not_found', `no console file "${request.params['*'].slice(0, 200)}"`);
      return send(reply, asset);
    });
  };
}
