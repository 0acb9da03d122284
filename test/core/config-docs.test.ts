import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULTS, ENV_VARS } from '../../src/core/config.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const doc = readFileSync(`${root}docs/configuration.md`, 'utf8');
const tableRows = doc.split('\n').filter((line) => line.startsWith('|'));

/** `{ a: { b: 1 } }` → `[['a.b', 1]]`. */
function flatten(value: object, prefix = ''): Array<[string, unknown]> {
  return Object.entries(value).flatMap(([key, v]): Array<[string, unknown]> =>
    typeof v === 'object' && v !== null ? flatten(v as object, `${prefix}${key}.`) : [[`${prefix}${key}`, v]],
  );
}

/** DEFAULTS groups per-handler and per-queue defaults; the docs use the path users write. */
function documentedKey(key: string): string {
  if (key.startsWith('handler.')) return `handlers[].${key.slice('handler.'.length)}`;
  if (key.startsWith('queue.')) return `queues.<name>.${key.slice('queue.'.length)}`;
  return key;
}

function rowFor(key: string): string | undefined {
  return tableRows.find((row) => row.split('|')[1]?.trim() === `\`${key}\``);
}

describe('docs/configuration.md', () => {
  const entries = flatten(DEFAULTS);

  it('has flattened defaults to check', () => {
    expect(entries.length).toBeGreaterThan(20);
  });

  it.each(entries)('documents %s with its default value', (key, value) => {
    const row = rowFor(documentedKey(key));
    expect(row, `no table row for \`${documentedKey(key)}\``).toBeDefined();
    const defaultCell = row?.split('|')[3]?.trim();
    expect(defaultCell).toBe(`\`${String(value)}\``);
  });

  it.each(Object.entries(ENV_VARS))('documents %s (sets %s)', (variable, key) => {
    expect(doc).toContain(`\`${variable}\``);
    const row = rowFor(key);
    expect(row, `no table row for \`${key}\``).toBeDefined();
    expect(row).toContain(`\`${variable}\``);
  });

  it('documents every DROVER_* variable the config code mentions', () => {
    const source = readFileSync(`${root}src/core/config-sources.ts`, 'utf8');
    const mentioned = new Set(source.match(/DROVER_[A-Z_]+/g) ?? []);
    expect(mentioned.size).toBeGreaterThanOrEqual(Object.keys(ENV_VARS).length);
    for (const variable of mentioned) {
      expect(Object.keys(ENV_VARS), `${variable} is read but missing from ENV_VARS`).toContain(variable);
      expect(doc).toContain(`\`${variable}\``);
    }
  });

  it('documents the CLI flags that map to overrides', () => {
    for (const flag of ['--config', '--host', '--port']) expect(doc).toContain(`\`${flag}`);
  });

  it('documents no DROVER_* variable that nothing reads', () => {
    // Other layers (CLI, runtime) may document their own variables here; each must exist in src/.
    const sources = readdirSync(`${root}src`, { recursive: true, withFileTypes: true })
      .filter((f) => f.isFile() && f.name.endsWith('.ts'))
      .map((f) => readFileSync(join(f.parentPath, f.name), 'utf8'))
      .join('\n');
    for (const variable of new Set(doc.match(/DROVER_[A-Z_]+/g) ?? [])) {
      expect(sources, `${variable} is documented but never read`).toContain(variable);
    }
  });
});

describe('environment variables read anywhere in src/', () => {
  function sources(dir: string): string[] {
    return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
    );
  }
  const read = new Set(sources(`${root}src`).flatMap((file) => readFileSync(file, 'utf8').match(/\bDROVER_[A-Z_]+\b/g) ?? []));
  it.each([...read])('%s is documented in docs/configuration.md', (variable) => {
    expect(doc).toContain(`\`${variable}\``);
  });
});
