import { describe, expect, it } from 'vitest';
import { actionCredentials, REDACTED, redactHeaders, redactUrl, redactValues, redactWebhookAction } from '../../src/core/redact.js';

describe('redactUrl', () => {
  it.each([
    ['https://hooks.example.com/in', 'https://hooks.example.com/in'],
    ['https://hooks.example.com/in?token=abc&team=x', `https://hooks.example.com/in?token=${REDACTED}&team=${REDACTED}`],
    ['https://hooks.example.com:8443/a/b?flag&k=', `https://hooks.example.com:8443/a/b?flag&k=${REDACTED}`],
    ['https://user:pass@hooks.example.com/in', `https://${REDACTED}@hooks.example.com/in`],
    ['https://user@hooks.example.com/in', `https://${REDACTED}@hooks.example.com/in`],
    ['https://hooks.example.com/in#sig=abc', `https://hooks.example.com/in#${REDACTED}`],
    ['http://[::1]:9/x?a=1', `http://[::1]:9/x?a=${REDACTED}`],
    ['not a url?token=abc', REDACTED],
  ])('%s -> %s', (raw, shown) => {
    expect(redactUrl(raw)).toBe(shown);
  });

  it('keeps no part of a query value, however it is encoded', () => {
    const shown = redactUrl('https://h/x?t=s%3Dcr%26et&u=a=b=c');
    expect(shown).not.toMatch(/cr|et|a=b|b=c/);
    expect(shown).toBe(`https://h/x?t=${REDACTED}&u=${REDACTED}`);
  });
});

describe('redactHeaders', () => {
  it('keeps names and replaces every value', () => {
    expect(redactHeaders({ Authorization: 'Bearer abc', 'x-team': 'billing' })).toEqual({ Authorization: REDACTED, 'x-team': REDACTED });
    expect(redactHeaders(undefined)).toEqual({});
  });
});

describe('redactWebhookAction', () => {
  const action = {
    type: 'webhook' as const,
    url: 'https://h.example/in?token=t0ken',
    timeoutMs: 2000,
    headers: { Authorization: 'Bearer s3cret-bearer' },
    secrets: [{ id: 'whs_1', secret: 'whsec_first_secret_value', createdAt: 0 }, { id: 'whs_2', secret: 'whsec_second_secret_value', createdAt: 1000 }],
    secret: 'whsec_legacy_secret_value',
  };

  it('shows names, ids and times, and no credential', () => {
    const shown = redactWebhookAction(action);
    expect(shown).toEqual({
      type: 'webhook',
      url: `https://h.example/in?token=${REDACTED}`,
      timeoutMs: 2000,
      headers: { Authorization: REDACTED },
      secrets: [{ id: 'whs_1', createdAt: '1970-01-01T00:00:00.000Z' }, { id: 'whs_2', createdAt: '1970-01-01T00:00:01.000Z' }],
    });
    const text = JSON.stringify(shown);
    for (const secret of ['t0ken', 's3cret-bearer', 'whsec_first', 'whsec_second', 'whsec_legacy']) expect(text).not.toContain(secret);
  });
});

describe('redactValues and actionCredentials', () => {
  it('finds every credential of an action and removes it from text a receiver answered', () => {
    const action = { url: 'https://u:pw-1234@h.example/in?token=t0ken-xyz&page=1', headers: { Authorization: 'Bearer abc123', 'x-team': 'billing' }, secrets: [{ secret: 'whsec_value_0001' }] };
    const values = actionCredentials(action);
    // The token of "Bearer abc123" alone too: servers echo it without its scheme.
    expect(values.sort()).toEqual(['Bearer abc123', 'abc123', 'billing', 'pw-1234', 't0ken-xyz', 'whsec_value_0001'].sort());
    const echoed = 'got authorization=Bearer abc123, token=t0ken-xyz, page=1, x-team=billing, bearer=abc123';
    expect(redactValues(echoed, values)).toBe(`got authorization=${REDACTED}, token=${REDACTED}, page=1, x-team=${REDACTED}, bearer=${REDACTED}`);
  });
});
