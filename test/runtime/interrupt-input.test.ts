/**
 * The resume input's schema check and what the audit trail keeps of it
 * (runtime/interrupt-input.ts): pure, no node.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DroverError } from '../../src/core/errors.js';
import { AUDITED_INPUT_BYTES, auditedInput, InterruptInputValidator } from '../../src/runtime/interrupt-input.js';

const problem = (fn: () => void): DroverError => {
  try {
    fn();
  } catch (error) {
    if (error instanceof DroverError) return error;
    throw error;
  }
  throw new Error('expected a DroverError');
};

describe('InterruptInputValidator', () => {
  const validator = new InterruptInputValidator();
  const schema = {
    type: 'object',
    properties: { approve: { type: 'boolean' }, items: { type: 'array', items: { type: 'object', properties: { sku: { type: 'string' } }, required: ['sku'] } }, at: { type: 'string', format: 'date-time' } },
    required: ['approve'],
  };

  it('accepts valid input, and any JSON without a schema', () => {
    expect(() => validator.check(schema, { approve: true, items: [{ sku: 'a' }], at: '2026-12-04T10:00:00Z' }, 'wt_1')).not.toThrow();
    expect(() => validator.check(null, 'anything', 'wt_1')).not.toThrow();
    expect(() => validator.check(undefined, null, 'wt_1')).not.toThrow();
  });

  it('names the failing field under input, every one in errors', () => {
    const error = problem(() => validator.check(schema, { approve: 1, items: [{}], at: 'yesterday' }, 'wt_1'));
    expect(error.status).toBe(422);
    expect(error.type).toBe('https://drover.dev/problems/validation');
    const paths = (error.extensions.errors as Array<{ path: string }>).map((e) => e.path).sort();
    expect(paths).toEqual(['input.approve', 'input.at', 'input.items.0.sku']);
    expect(error.message).toMatch(/\(and 2 more\)$/);
  });

  it('refuses a schema that is not JSON Schema as the handler\'s fault (500), not the caller\'s', () => {
    const error = problem(() => validator.check({ type: 'no-such-type' }, {}, 'wt_9'));
    expect(error.status).toBe(500);
    expect(error.message).toMatch(/interrupt wt_9's schema is not a valid JSON Schema/);
  });
});

describe('auditedInput', () => {
  it('keeps a small input with credentials redacted: by name, writeOnly or format password, nested', () => {
    const schema = { type: 'object', properties: { pin: { type: 'string', writeOnly: true }, login: { type: 'object', properties: { code: { type: 'string', format: 'password' } } } } };
    const input = { approve: true, apiKey: 'k', pin: '1234', login: { user: 'ann', code: 'c' }, list: [{ password: 'p', ok: 1 }] };
    const audited = auditedInput(input, schema);
    expect(audited.input).toEqual({ approve: true, apiKey: '[redacted]', pin: '[redacted]', login: { user: 'ann', code: '[redacted]' }, list: [{ password: '[redacted]', ok: 1 }] });
    expect(audited.inputSha256).toBe(createHash('sha256').update(JSON.stringify(input)).digest('hex'));
    expect(audited.inputBytes).toBe(JSON.stringify(input).length);
  });

  it('keeps a large input by hash and size only', () => {
    const input = { note: 'x'.repeat(AUDITED_INPUT_BYTES) };
    const audited = auditedInput(input, null);
    expect(audited).not.toHaveProperty('input');
    expect(audited.inputBytes).toBeGreaterThan(AUDITED_INPUT_BYTES);
  });
});
