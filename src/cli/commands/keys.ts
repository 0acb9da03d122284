/**
 * `drover keys create|list|revoke`: manage API keys directly in the store, so
 * an operator on the box can recover access without a working key.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { createApiKey } from '../../api/auth.js';
import { DroverError } from '../../core/errors.js';
import { validateHandlerPatterns } from '../../core/key-scope.js';
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

function parseHandlers(value: string): string[] {
  try {
    return validateHandlerPatterns(value.split(',').map((s) => s.trim()).filter((s) => s !== ''));
  } catch (error) {
    if (error instanceof DroverError) throw new InvalidArgumentError(error.message);
    throw error;
  }
}

/** A key's handler scope as `keys list` shows it: `-` without work, `remote` for the default. */
function handlersColumn(key: { scopes: ApiScope[]; handlers: string[] | null }): string {
  if (key.scopes.includes('admin')) return '*';
  if (!key.scopes.includes('work')) return '-';
  return key.handlers === null ? 'remote' : key.handlers.join(',');
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
    .option(
      '--handlers <patterns>',
      'work keys: comma-separated handler names or patterns it may lease (`*` one segment, `**` any); default: handlers declared remote: true; never drover.*',
      parseHandlers,
    )
    .option('--expires-in-days <days>', 'expire after this many days', (v) => {
      const days = Number(v);
      if (!Number.isFinite(days) || days <= 0) throw new InvalidArgumentError('expected a positive number of days');
      return days;
    })
    .option('--json', 'print JSON')
    .action(async (opts: { name: string; scopes: ApiScope[]; handlers?: string[]; expiresInDays?: number; json?: boolean }) => {
      if (opts.handlers && !opts.scopes.includes('work')) throw new InvalidArgumentError('--handlers applies to keys with the work scope; add --scopes work');
      await withStore(async (store) => {
        const now = Date.now();
        const { key, secret } = await createApiKey(store, {
          name: opts.name,
          scopes: opts.scopes,
          handlers: opts.handlers ?? null,
          now,
          expiresAt: opts.expiresInDays ? now + opts.expiresInDays * 86_400_000 : null,
        });
        await cliAudit(store, databaseUrlFromEnv()).record({ action: 'key.create', target: `key:${key.id}`, after: { name: key.name, scopes: key.scopes, ...(key.handlers === null ? {} : { handlers: key.handlers }), expiresAt: key.expiresAt } });
        if (opts.json) process.stdout.write(`${JSON.stringify({ id: key.id, name: key.name, scopes: key.scopes, handlers: key.handlers, secret })}\n`);
        else process.stdout.write(`${key.id} ${key.scopes.join(',')}${key.scopes.includes('work') && !key.scopes.includes('admin') ? ` handlers=${handlersColumn(key)}` : ''}\n${secret}\n(the secret is shown once)\n`);
      });
    });
  keys
    .command('list')
    .description('list keys (never their secrets): id, name, scopes, state, created, handlers (work keys: patterns, or `remote`)')
    .action(async () => {
      await withStore(async (store) => {
        for (const key of await store.listKeys()) {
          const state = key.revokedAt ? 'revoked' : key.expiresAt && key.expiresAt < Date.now() ? 'expired' : 'active';
          process.stdout.write(`${key.id}\t${key.name}\t${key.scopes.join(',')}\t${state}\t${new Date(key.createdAt).toISOString()}\t${handlersColumn(key)}\n`);
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
