/**
 * What the docs and hints tell a user to type must work: every `drover …`
 * command line named in README.md, docs/, ops-assets/, the Dockerfile and
 * the hint strings in src/ is checked against the real command tree
 * (src/cli/program.ts: each subcommand and --flag must exist), and every
 * dotted config key (`backup.every`, `handlers[].limits.memoryMb`) against
 * the config schema. A renamed flag or key fails here, not in an operator's
 * terminal.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { buildProgram } from '../../src/cli/program.js';
import { configSchema } from '../../src/core/config-schema.js';
import { TRIGGER_CONTROL_KEYS } from '../../src/core/trigger-control.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function files(dir: string, keep: (name: string) => boolean): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((f) => f.isFile() && keep(f.name))
    .map((f) => relative(ROOT, join(f.parentPath, f.name)));
}
const DOCS = ['README.md', 'Dockerfile', ...files('docs', (n) => n.endsWith('.md')), ...files('ops-assets', (n) => /\.(ya?ml|service|md)$/.test(n))];
const SOURCES = files('src', (n) => /\.(ts|mjs)$/.test(n));
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

/** Words after `drover` that are program output or prose, not commands (the ready line, the key line, log prefixes, table headers). */
const NOT_COMMANDS = new Set(['ready', 'admin', 'worker', 'stopped', '/', 'vs']);

interface Mention { file: string; line: string }

/** `drover …` command lines: in code spans, in shell blocks, after bin/drover (ExecStart, CMD), and in hint strings (`run \`drover migrate\``). */
function commandMentions(file: string, text: string): Mention[] {
  const source = file.startsWith('src/') ? text.replace(/\$\{[^}]*\}/g, 'X').replace(/\\`/g, '`') : text;
  const out: Mention[] = [];
  // A code span may wrap onto the next line (`drover migrate\n--status`).
  for (const [, line] of source.matchAll(/`(?:npx )?(drover [^`]{1,200})`/g)) out.push({ file, line: line!.replace(/\s+/g, ' ') });
  for (const [, line] of source.matchAll(/bin\/(drover [^"'`\n\]]+)/g)) out.push({ file, line: line! });
  if (file.endsWith('.md')) {
    for (const [, block] of source.matchAll(/```(?:sh|bash|console|shell)?\n([\s\S]*?)```/g)) {
      for (const raw of block!.split('\n')) {
        const m = /^\s*(?:\$ )?(?:[A-Z_]+=\S* )*(?:sudo -u \S+ )?(?:npx )?(drover (?:[a-z].*))$/.exec(raw.replace(/\s+#.*$/, ''));
        if (m) out.push({ file, line: m[1]! });
        for (const [, piped] of raw.matchAll(/\| (drover [a-z].*?)(?=$| \||\s+#)/g)) out.push({ file, line: piped! });
      }
    }
  }
  return out;
}

/** Why `line` is not a command the program accepts, or null. */
function problemWith(program: Command, line: string): string | null {
  const tokens = line.replace(/\s+#.*$/, '').replace(/[.,;:)]+$/, '').trim().split(/\s+/).slice(1);
  if (tokens.length === 0 || NOT_COMMANDS.has(tokens[0]!) || /^[-—–…]|^\.\.\.$/.test(tokens[0]!) && !tokens[0]!.startsWith('--')) return null;
  let cmd = program;
  let path = 'drover';
  for (const token of tokens) {
    if (token === '|' || token === '&&' || token === '>' || token === '2>&1') break; // the rest is another command
    if (/^--?[A-Za-z]/.test(token)) {
      const flag = token.split('=')[0]!;
      const known = [...cmd.options, ...program.options].some((o) => o.long === flag || o.short === flag || (o.negate && o.long === flag)) || ['--help', '-h'].includes(flag);
      if (!known) return `\`${path}\` has no option ${flag} (it has: ${cmd.options.map((o) => o.long).join(', ') || 'none'})`;
      continue;
    }
    if (cmd.commands.length === 0 || !/^[a-z][a-z-]*(\|[a-z][a-z-]*)*$/.test(token)) continue; // an argument
    let next: Command | undefined;
    for (const name of token.split('|')) {
      const sub = cmd.commands.find((c) => c.name() === name || c.aliases().includes(name));
      if (!sub) return `\`${path}\` has no subcommand "${name}" (it has: ${cmd.commands.map((c) => c.name()).join(', ')})`;
      next ??= sub;
    }
    cmd = next!;
    path += ` ${cmd.name()}`;
  }
  return null;
}

/** The schema one level down a dotted path, or null when the key does not exist. */
function child(schema: z.ZodType, segment: string): z.ZodType | null {
  let s: z.ZodType = schema;
  while (s instanceof z.ZodOptional || s instanceof z.ZodNullable || s instanceof z.ZodDefault) s = (s as z.ZodOptional<z.ZodType>).unwrap();
  if (segment === '[]' || /^\[\d+\]$/.test(segment)) return s instanceof z.ZodArray ? (s.element as z.ZodType) : null;
  if (s instanceof z.ZodObject) return (s.shape as Record<string, z.ZodType>)[segment] ?? null;
  if (s instanceof z.ZodRecord) return s._zod.def.valueType as z.ZodType;
  // `handlers[].on` is z.unknown() here and checked in config-checks.ts (checkTriggers): its keys are event, filter and one trigger control.
  if (s instanceof z.ZodUnknown) {
    if (['event', 'filter'].includes(segment)) return s;
    const control = (TRIGGER_CONTROL_KEYS as Record<string, readonly string[]>)[segment];
    return control ? z.strictObject(Object.fromEntries(control.map((key) => [key, z.number()]))) : null;
  }
  if (s instanceof z.ZodUnion) {
    for (const option of s.options as z.ZodType[]) {
      const found = child(option, segment);
      if (found) return found;
    }
  }
  return null;
}
function keyExists(key: string): boolean {
  const segments = key.replace(/\[(\d*)\]/g, '.[$1]').split('.').filter(Boolean);
  let s: z.ZodType | null = configSchema() as unknown as z.ZodType;
  for (const segment of segments) {
    s = child(s!, segment);
    if (s === null) return false;
  }
  return true;
}

const TOP_KEYS = Object.keys((configSchema() as unknown as z.ZodObject).shape);
const KEY_RE = new RegExp(`(?<![\\w.$/#-])((?:${TOP_KEYS.join('|')})(?:\\[\\d*\\])?(?:\\.(?:<[a-z]+>|[A-Za-z]+)(?:\\[\\d*\\])?)+)(?![\\w(/-]|\\.\\w)`, 'g');

/**
 * Dotted names that share a config key's first word but are not config:
 * audit actions (`backup.create`), members of the metrics object in code
 * samples (`metrics.registry`), file names (`backup.ts`).
 */
const NOT_CONFIG_KEYS = /^(backup\.(create|restore)|audit\.record|metrics\.(registry|handler[A-Za-z]+)|[a-z]+\.(ts|js|mjs|md|ya?ml))$/;

/** Dotted config keys: in code spans of docs; in the string literals of src/. */
function keyMentions(file: string, text: string): Mention[] {
  const spans = file.startsWith('src/')
    ? [...text.matchAll(/'([^'\n]*)'|"([^"\n]*)"|`([^`]*)`/g)].map((m) => m[1] ?? m[2] ?? m[3] ?? '')
    : [...text.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
  const out: Mention[] = [];
  for (const span of spans) {
    // Only where the span reads as a config key, not code: `metrics.port`, not `metrics.registry.metrics()`.
    for (const [, key] of span.matchAll(KEY_RE)) if (!NOT_CONFIG_KEYS.test(key!)) out.push({ file, line: key!.replace(/\.<[a-z]+>/g, '.x') });
  }
  return out;
}

describe('commands named in docs, deployment files and hints exist', () => {
  const program = buildProgram();
  const mentions = [...DOCS, ...SOURCES].flatMap((file) => commandMentions(file, read(file)));

  it('finds the mentions (the extractor still works)', () => {
    expect(mentions.length).toBeGreaterThan(80);
    expect(mentions.some((m) => m.file === 'ops-assets/systemd/drover.service' && m.line.startsWith('drover start --config'))).toBe(true);
    expect(mentions.some((m) => m.file.startsWith('src/') && m.line.startsWith('drover migrate'))).toBe(true);
  });

  it('every one parses against the real command tree', () => {
    const problems = mentions.map((m) => ({ ...m, problem: problemWith(program, m.line) })).filter((m) => m.problem !== null);
    expect(problems.map((p) => `${p.file}: \`${p.line}\`: ${p.problem}`)).toEqual([]);
  });

  it('catches a command that does not exist, and a flag that does not', () => {
    expect(problemWith(program, 'drover migrate --status')).toMatch(/no option --status/);
    expect(problemWith(program, 'drover handlers restart NAME')).toMatch(/no subcommand "restart"/);
    expect(problemWith(program, 'drover jobs enqueue send-email --payload-file - --max-attempts 3')).toBeNull();
  });
});

describe('config keys named in docs, deployment files and hints exist', () => {
  const mentions = [...DOCS, ...SOURCES].flatMap((file) => keyMentions(file, read(file)));

  it('finds the mentions', () => {
    expect(mentions.length).toBeGreaterThan(40);
    expect(mentions.some((m) => m.line === 'backup.every')).toBe(true);
  });

  it('every one is in the config schema', () => {
    expect(mentions.filter((m) => !keyExists(m.line)).map((m) => `${m.file}: ${m.line}`)).toEqual([]);
  });

  it('catches a key the config rejects', () => {
    expect(keyExists('backup.everyMs')).toBe(false);
    expect(keyExists('handlers[].limits.memoryMb')).toBe(true);
    expect(keyExists('queues.x.maxDepth')).toBe(true);
  });
});


describe('the stop timeout is one number everywhere', () => {
  it('TimeoutStopSec, stop_grace_period and terminationGracePeriodSeconds in docs and deployment files agree with the unit', () => {
    const unit = Number(/^TimeoutStopSec=(\d+)$/m.exec(read('ops-assets/systemd/drover.service'))![1]);
    const found = DOCS.flatMap((file) => [...read(file).matchAll(/(TimeoutStopSec=|stop_grace_period: |terminationGracePeriodSeconds: )(\d+)/g)].map((m) => ({ file, setting: m[1]!, seconds: Number(m[2]) })));
    expect(found.length).toBeGreaterThanOrEqual(3);
    expect(found.filter((f) => f.seconds !== unit)).toEqual([]);
  });
});
