/**
 * Where settings come from besides the config file: `DROVER_*` environment
 * variables and CLI overrides. Each reader validates what it reads and adds
 * its problems to the shared issue list, so `resolveConfig` reports every
 * mistake at once; it applies them over the file (overrides win over env).
 */
import { got, LOG_LEVELS, MAX_TIMER_MS, PG_SCHEMA_EXPECTED, PG_SCHEMA_RE, type ConfigIssue, type LogLevel } from './config-schema.js';

/**
 * The environment variables `resolveConfig` reads, and the key each one sets.
 *
 * @example
 * ENV_VARS.DROVER_PORT; // 'server.port'
 */
export const ENV_VARS = {
  DROVER_HOST: 'server.host',
  DROVER_PORT: 'server.port',
  DROVER_DATABASE_URL: 'databaseUrl',
  DROVER_LOG_LEVEL: 'log.level',
  DROVER_SHUTDOWN_GRACE_MS: 'shutdown.graceMs',
  DROVER_PG_SCHEMA: 'postgres.schema',
  DROVER_METRICS_HOST: 'metrics.host',
  DROVER_METRICS_PORT: 'metrics.port',
} as const;

/** Values from CLI flags; they win over env and the config file. */
export interface ConfigOverrides {
  host?: string;
  port?: number;
  databaseUrl?: string;
  logLevel?: string;
  graceMs?: number;
}

/** Settings from env and overrides, by the config key they replace. */
export type Settings = Partial<{ host: string; port: number; databaseUrl: string; logLevel: LogLevel; graceMs: number; metricsHost: string; metricsPort: number; pgSchema: string }>;

export function readEnv(env: Readonly<Record<string, string | undefined>>, issues: ConfigIssue[]): Settings {
  // An empty variable (`DROVER_PORT=` in an env file) means "not set", as most tools treat it.
  const get = (key: keyof typeof ENV_VARS) => (env[key] === '' ? undefined : env[key]);
  const out: Settings = {};
  const host = get('DROVER_HOST');
  if (host !== undefined) out.host = host;
  const url = get('DROVER_DATABASE_URL');
  if (url !== undefined) out.databaseUrl = url;
  const port = get('DROVER_PORT');
  if (port !== undefined) out.port = envInt('DROVER_PORT', port, 0, 65535, issues);
  const grace = get('DROVER_SHUTDOWN_GRACE_MS');
  if (grace !== undefined) out.graceMs = envInt('DROVER_SHUTDOWN_GRACE_MS', grace, 0, MAX_TIMER_MS, issues);
  const pgSchema = get('DROVER_PG_SCHEMA');
  if (pgSchema !== undefined) {
    if (PG_SCHEMA_RE.test(pgSchema)) out.pgSchema = pgSchema;
    else issues.push({ path: 'DROVER_PG_SCHEMA', message: `${PG_SCHEMA_EXPECTED}, got ${JSON.stringify(pgSchema)}` });
  }
  const level = get('DROVER_LOG_LEVEL');
  if (level !== undefined) out.logLevel = logLevel('DROVER_LOG_LEVEL', level, issues);
  const metricsHost = get('DROVER_METRICS_HOST');
  if (metricsHost !== undefined) out.metricsHost = metricsHost;
  const metricsPort = get('DROVER_METRICS_PORT');
  if (metricsPort !== undefined) out.metricsPort = envInt('DROVER_METRICS_PORT', metricsPort, 0, 65535, issues);
  return definedOnly(out);
}

function envInt(variable: string, value: string, min: number, max: number, issues: ConfigIssue[]): number | undefined {
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (Number.isSafeInteger(n) && n >= min && n <= max) return n;
  issues.push({ path: variable, message: `expected an integer from ${min} to ${max}, got ${JSON.stringify(value)}` });
  return undefined;
}

function logLevel(where: string, value: unknown, issues: ConfigIssue[]): LogLevel | undefined {
  if ((LOG_LEVELS as readonly unknown[]).includes(value)) return value as LogLevel;
  issues.push({ path: where, message: `expected one of ${LOG_LEVELS.map((l) => `"${l}"`).join(', ')}, ${got(value)}` });
  return undefined;
}

export function readOverrides(o: ConfigOverrides, issues: ConfigIssue[]): Settings {
  const out: Settings = {};
  const nonEmpty = (where: string, v: unknown): string | undefined => {
    if (typeof v === 'string' && v.length > 0) return v;
    issues.push({ path: where, message: `expected a non-empty string, ${got(v)}` });
    return undefined;
  };
  const integer = (where: string, v: unknown, min: number, max: number): number | undefined => {
    if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
    issues.push({ path: where, message: `expected an integer from ${min} to ${max}, ${got(v)}` });
    return undefined;
  };
  if (o.host !== undefined) out.host = nonEmpty('--host', o.host);
  if (o.port !== undefined) out.port = integer('--port', o.port, 0, 65535);
  if (o.databaseUrl !== undefined) out.databaseUrl = nonEmpty('overrides.databaseUrl', o.databaseUrl);
  if (o.logLevel !== undefined) out.logLevel = logLevel('overrides.logLevel', o.logLevel, issues);
  if (o.graceMs !== undefined) out.graceMs = integer('overrides.graceMs', o.graceMs, 0, MAX_TIMER_MS);
  return definedOnly(out);
}

/** `value` without its undefined fields, so spreading it over defaults keeps them. */
export function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
