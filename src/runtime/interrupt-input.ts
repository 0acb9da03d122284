/**
 * The input a person resumes an interrupt with: checked against the JSON
 * Schema the handler gave `ctx.step.interrupt`, and reduced to what the audit
 * trail may keep.
 *
 * Schemas come from handler code (trusted) but are compiled per distinct
 * schema, lazily, and kept in a small LRU: an approval flow asks the same
 * question of many jobs, so it compiles once.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import type addFormatsImport from 'ajv-formats';
import { DroverError } from '../core/errors.js';
import { REDACTED } from '../core/redact.js';

/**
 * Ajv and ajv-formats, required at the first interrupt schema compiled: most
 * nodes never resume an interrupt, and they cost several MiB and ~60 modules
 * (issue 24, worker RSS). ajv-formats is CommonJS with a default export; under
 * NodeNext it arrives as the module object.
 */
function addFormats(ajv: Ajv): Ajv {
  const loaded = createRequire(import.meta.url)('ajv-formats') as typeof addFormatsImport;
  return (((loaded as unknown as { default?: unknown }).default ?? loaded) as (ajv: Ajv) => Ajv)(ajv);
}

/** Compiled schemas kept (distinct interrupt questions, not interrupts). */
const CACHE_ENTRIES = 256;
/** Inputs up to this many JSON bytes are kept in the audit record (redacted); larger ones by hash and size only. */
export const AUDITED_INPUT_BYTES = 4096;
/** Keys whose values are credentials by name, whatever the schema says. */
const SECRET_KEY = /pass(word|phrase)?|secret|token|api[-_]?key|authori[sz]ation|credential|private[-_]?key|cookie|session/i;

export interface InputProblem {
  /** `input`, `input.approve`, `input.items.2.sku`. */
  path: string;
  message: string;
}

export class InterruptInputValidator {
  #ajv: Ajv | null = null;
  readonly #compiled = new Map<string, ValidateFunction>();

  /** Made at the first schema compiled (see addFormats). */
  #validator(): Ajv {
    // strict: false: handler authors annotate schemas (`description`, `examples`, custom keywords) and must not be refused for it.
    const { Ajv: AjvClass } = createRequire(import.meta.url)('ajv') as { Ajv: typeof Ajv };
    this.#ajv ??= addFormats(new AjvClass({ allErrors: true, strict: false, coerceTypes: false, useDefaults: false, removeAdditional: false }));
    return this.#ajv;
  }

  /**
   * Throws `DroverError('validation')` (422) naming the first failing field
   * under `input` (every one in `errors`) when `input` does not satisfy
   * `schema`; a null schema accepts any JSON.
   *
   * @example
   * validator.check({ type: 'object', required: ['approve'] }, {}, 'wt_1'); // throws: input: must have required property 'approve'
   */
  check(schema: unknown, input: unknown, interruptId: string): void {
    if (schema === null || schema === undefined) return;
    const validate = this.#compile(schema, interruptId);
    if (validate(input)) return;
    const errors = (validate.errors ?? []).map(problemOf);
    const first = errors[0];
    throw new DroverError(
      'validation',
      first ? `${first.path}: ${first.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}` : 'input does not match the interrupt\'s schema',
      { extensions: { errors, interrupt: interruptId } },
    );
  }

  #compile(schema: unknown, interruptId: string): ValidateFunction {
    const key = JSON.stringify(schema);
    const cached = this.#compiled.get(key);
    if (cached) {
      // Refresh its place: the Map's order is the LRU order.
      this.#compiled.delete(key);
      this.#compiled.set(key, cached);
      return cached;
    }
    let validate: ValidateFunction;
    try {
      validate = this.#validator().compile(schema as object);
    } catch (error) {
      // Not the caller's mistake: the handler declared a schema that is not JSON Schema.
      throw new DroverError('config_invalid', `interrupt ${interruptId}'s schema is not a valid JSON Schema (${(error as Error).message}); fix the schema the handler passes to ctx.step.interrupt`, { cause: error });
    }
    if (this.#compiled.size >= CACHE_ENTRIES) this.#compiled.delete(this.#compiled.keys().next().value!);
    this.#compiled.set(key, validate);
    return validate;
  }
}

function problemOf(error: ErrorObject): InputProblem {
  const at = error.instancePath === '' ? 'input' : `input${error.instancePath.replace(/\//g, '.')}`;
  // `required` names the missing member: say it where it is missing.
  const missing = error.keyword === 'required' && typeof error.params.missingProperty === 'string' ? `.${error.params.missingProperty}` : '';
  const extra = error.keyword === 'additionalProperties' && typeof error.params.additionalProperty === 'string' ? ` ("${error.params.additionalProperty}")` : '';
  return { path: at + missing, message: `${error.message ?? 'is invalid'}${extra}` };
}

/**
 * What the audit trail keeps of a resume's input: always its SHA-256 and
 * size (so a record proves which input was given); the value itself only up
 * to `AUDITED_INPUT_BYTES`, with credentials replaced by `[redacted]`: members
 * the schema marks `writeOnly: true` or `format: "password"`, and members
 * named like a credential (`password`, `token`, `apiKey`, …).
 *
 * @example
 * auditedInput({ approve: true, token: 'abc' }, null); // { inputSha256: '…', inputBytes: 30, input: { approve: true, token: '[redacted]' } }
 */
export function auditedInput(input: unknown, schema: unknown): { inputSha256: string; inputBytes: number; input?: unknown } {
  const json = JSON.stringify(input) ?? 'null';
  const inputBytes = Buffer.byteLength(json);
  const inputSha256 = createHash('sha256').update(json).digest('hex');
  if (inputBytes > AUDITED_INPUT_BYTES) return { inputSha256, inputBytes };
  return { inputSha256, inputBytes, input: redact(input, schema) };
}

function redact(value: unknown, schema: unknown): unknown {
  if (Array.isArray(value)) return value.map((item) => redact(item, subschema(schema, 'items')));
  if (value === null || typeof value !== 'object') return value;
  const properties = subschema(schema, 'properties');
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
    const own = properties && typeof properties === 'object' ? (properties as Record<string, unknown>)[key] : undefined;
    out[key] = SECRET_KEY.test(key) || isSecret(own) ? REDACTED : redact(inner, own);
  }
  return out;
}

function subschema(schema: unknown, member: string): unknown {
  return schema !== null && typeof schema === 'object' ? (schema as Record<string, unknown>)[member] : undefined;
}

function isSecret(schema: unknown): boolean {
  return subschema(schema, 'writeOnly') === true || subschema(schema, 'format') === 'password';
}
