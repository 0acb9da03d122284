/**
 * The action template language: field paths only, own members only, and
 * escaping that keeps event data from breaking out of a JSON string or
 * injecting markup.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compileJsonTemplate,
  compileTemplate,
  htmlEscape,
  jsonStringEscape,
  markdownV2Escape,
  renderJsonTemplate,
  renderTemplate,
} from '../../src/core/template.js';

const ROOTS = ['data', 'event'];
const render = (source: string, scope: unknown, escape?: (s: string) => string) => renderTemplate(compileTemplate(source, 'f', ROOTS), scope, escape);

describe('text templates', () => {
  it('replaces field paths, array indexes included, and writes values as text', () => {
    const scope = { data: { id: 42, ok: true, name: 'Ada', items: [{ sku: 'A-1' }], obj: { a: 1 }, nil: null }, event: { name: 'order.created' } };
    expect(render('#{{data.id}} {{ data.name }} {{data.items.0.sku}} {{event.name}}', scope)).toBe('#42 Ada A-1 order.created');
    expect(render('{{data.ok}} {{data.obj}} [{{data.nil}}] [{{data.missing.deep}}]', scope)).toBe('true {"a":1} [] []');
    expect(render('no placeholders', scope)).toBe('no placeholders');
  });

  it('reads own members only: no prototype, constructor or length lookups', () => {
    const scope = { data: { items: [1, 2] } };
    for (const path of ['data.__proto__', 'data.constructor', 'data.toString', 'data.items.length', 'data.hasOwnProperty']) {
      expect(render(`{{${path}}}`, scope), path).toBe('');
    }
  });

  it('refuses anything but a field path, unknown roots and stray braces, naming the field', () => {
    for (const bad of ['{{data.a + 1}}', '{{data["a"]}}', '{{fn()}}', '{{process.env.X}}', '{{}}', '{{data..a}}', 'a {{data.a', 'a }} b', '{{#each data}}']) {
      expect(() => compileTemplate(bad, 'action.text', ROOTS), bad).toThrowError(/action\.text: template/);
    }
    expect(() => compileTemplate('{{x.y}}', 'action.text', ROOTS)).toThrowError(/starts with one of data, event/);
    expect(() => compileTemplate('x'.repeat(20_000), 'action.text', ROOTS)).toThrowError(/at most/);
  });

  it('escapes values for a JSON string: any data gives valid JSON that round-trips', () => {
    const t = compileTemplate('{"note":"{{data.note}}","n":"{{data.n}}"}', 'body', ROOTS);
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.oneof(fc.integer(), fc.string()), (note, n) => {
        const parsed = JSON.parse(renderTemplate(t, { data: { note, n } }, jsonStringEscape)) as { note: string; n: string };
        return parsed.note === note && parsed.n === String(n) && Object.keys(parsed).length === 2;
      }),
    );
  });

  it('escapes values for Telegram HTML and MarkdownV2', () => {
    expect(render('<b>{{data.x}}</b>', { data: { x: '<i>&"' } }, htmlEscape)).toBe('<b>&lt;i&gt;&amp;&quot;</b>');
    expect(render('*{{data.x}}*', { data: { x: 'a_b*c[d](e).!' } }, markdownV2Escape)).toBe('*a\\_b\\*c\\[d\\]\\(e\\)\\.\\!*');
  });
});

describe('JSON templates', () => {
  it('keeps the type of a whole-value placeholder and writes text otherwise', () => {
    const t = compileJsonTemplate({ id: '{{data.id}}', tags: ['{{data.tags}}', 'x-{{data.id}}'], nested: { obj: '{{data.obj}}' }, n: 3, missing: '{{data.nope}}' }, 'action.arguments', ROOTS);
    expect(renderJsonTemplate(t, { data: { id: 7, tags: ['a'], obj: { k: 'v' } } })).toEqual({ id: 7, tags: [['a'], 'x-7'], nested: { obj: { k: 'v' } }, n: 3, missing: null });
  });

  it('cannot be steered by data: an object member named __proto__ is plain data', () => {
    const t = compileJsonTemplate(JSON.parse('{"__proto__":"{{data.x}}"}'), 'body', ROOTS);
    const out = renderJsonTemplate(t, { data: { x: { polluted: true } } }) as Record<string, unknown>;
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(JSON.stringify(out)).toBe('{"__proto__":{"polluted":true}}');
  });

  it('validates every string inside, with its path', () => {
    expect(() => compileJsonTemplate({ a: [{ b: '{{data.a()}}' }] }, 'action.arguments', ROOTS)).toThrowError(/action\.arguments\.a\[0\]\.b: template/);
  });
});
