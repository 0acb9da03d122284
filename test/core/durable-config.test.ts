import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/core/config.js';
import { DURABLE_DEFAULTS } from '../../src/core/durable.js';
import type { DroverError } from '../../src/core/errors.js';

function problems(raw: unknown): string[] {
  try {
    resolveConfig(raw, {});
    return [];
  } catch (error) {
    return ((error as DroverError).extensions.errors as Array<{ path: string; message: string }>).map((i) => `${i.path}: ${i.message}`);
  }
}

describe('config: durable', () => {
  it('defaults to DURABLE_DEFAULTS', () => {
    expect(resolveConfig({ handlers: [] }, {}).durable).toEqual(DURABLE_DEFAULTS);
  });

  it('takes each limit alone', () => {
    expect(resolveConfig({ handlers: [], durable: { maxStepsPerJob: 50 } }, {}).durable).toEqual({ ...DURABLE_DEFAULTS, maxStepsPerJob: 50 });
  });

  it('names the key and the expected value', () => {
    expect(problems({ handlers: [], durable: { maxStepResultBytes: 0 } })).toEqual([
      'durable.maxStepResultBytes: expected an integer from 1 to 268435456, got 0',
    ]);
    expect(problems({ handlers: [], durable: { steps: 3 } })[0]).toMatch(/^durable\.steps: unknown key; allowed keys: maxStepResultBytes, maxStepsPerJob, maxStateBytesPerJob/);
  });
});
