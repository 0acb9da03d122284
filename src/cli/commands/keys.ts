/**
 * `drover keys create|list|revoke`: manage API keys directly in the store, so
 * an operator on the box can recover access without a working key.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { createApiKey } from '../../api/auth.js';
import { API_SCOPES, type ApiScope } from '../../core/types.js';
import { cliAudit } from '../../ops/audit/cli-trail.js';
import { openStore } from '../../store/open.js';
import { databaseUrlFromEnv } from './options.js';

function parseScopes(value: string): ApiScope[] {
  const scopes = value.split(',').map((s) => s.trim());
  for (const scope of scopes) {
    if (!API_SCOPES.includes(scope as ApiScope)) throw new InvalidArgumentError(`unknown scope "${scope}"; expected one or more of ${API_SCOPES.join(', ')}`);
  }
  return scopes as ApiScope[];
}

async function withStore<T>(fn: (store: Awaited<ReturnType<typeof openStore>>) => Promise<T>): Promise<T> {
  const store = await openStore(databaseUrlFromEnv(), { lock: false });
  try {
    await store.migrate();
    return await fn(store);
  } finally {
    await store.close();
  }
}

export function registerKeyCommands(program: Command): void {
  const keys = program.command('keys').description('manage API keys');
  keys
    .command('create')
    .description('create a key and print its secret once')
    .requiredOption('--name <name>', 'what the key is for')
    .option('--scopes <list>', `comma-separated: ${API_SCOPES.join(', ')}`, parseScopes, ['read'] as ApiScope[])
    .option('--expires-in-days <days>', 'expire after this many days', (v) => {
      const days = Number(v);
      if (!Number.isFinite(days) || days <= 0) throw new InvalidArgumentError('expected a positive number of days');
      return days;
    })
    .option('--json', 'print JSON')
    .action(async (opts: { name: string; scopes: ApiScope[]; expiresInDays?: number; json?: boolean }) => {
      await withStore(async (store) => {
        const now = Date.now();
        const { key, secret } = await createApiKey(store, {
          name: opts.name,
          scopes: opts.scopes,
          now,
          expiresAt: opts.expiresInDays ? now + opts.expiresInDays * 86_400_000 : null,
        });
        await cliAudit(store, databaseUrlFromEnv()).record({ action: 'key.create', target: `key:${key.id}`, after: { name: key.name, scopes: key.scopes, expiresAt: key.expiresAt } });
        if (opts.json) process.stdout.write(`${JSON.stringify({ id: key.id, name: key.name, scopes: key.scopes, secret })}\n`);
        else process.stdout.write(`${key.id} ${key.scopes.join(',')}\n${secret}\n(the secret is shown once)\n`);
      });
    });
  keys
    .command('list')
    .description('list keys (never their secrets)')
    .action(async () => {
      await withStore(async (store) => {
        for (const key of await store.listKeys()) {
          const state = key.revokedAt ? 'revoked' : key.expiresAt && key.expiresAt < Date.now() ? 'expired' : 'active';
          process.stdout.write(`${key.id}\t${key.name}\t${key.scopes.join(',')}\t${state}\t${new Date(key.createdAt).toISOString()}\n`);
        }
      });
    });
  keys
    .command('revoke <id>')
    .description('revoke a key (takes effect within 5 s on running nodes)')
    .action(async (id: string) => {
      await withStore(async (store) => {
        if (!(await store.revokeKey(id))) throw new InvalidArgumentError(`no active key with id ${id}; see \`drover keys list\``);
        await cliAudit(store, databaseUrlFromEnv()).record({ action: 'key.revoke', target: `key:${id}`, before: { revoked: false }, after: { revoked: true } });
        process.stdout.write(`revoked ${id}\n`);
      });
    });
}
