/**
 * The interrupts inbox: durable jobs waiting for a person (`ctx.step.interrupt`),
 * each with its prompt and a form generated from the step's JSON Schema. A
 * schema the form cannot express field by field (nested objects, arrays) is
 * answered as JSON; either way the node checks the input against the schema
 * and a mismatch comes back as the API's message (422).
 */
import { useState } from 'preact/hooks';
import { api } from '../api';
import { ErrorNote, Time, useLoad } from '../ui';

export interface Interrupt {
  id: string;
  jobId: string;
  handler: string;
  step: string;
  prompt: string;
  schema: JsonSchema | null;
  state: string;
  createdAt: string;
  expiresAt: string | null;
}

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  title?: string;
  description?: string;
}

type Field = { name: string; kind: 'boolean' | 'string' | 'number' | 'integer' | 'enum'; schema: JsonSchema; required: boolean };

/** The schema's top-level fields when every one is a plain scalar; null when the form must fall back to JSON. */
export function formFields(schema: JsonSchema | null): Field[] | null {
  if (!schema || schema.type !== 'object' || !schema.properties) return null;
  const fields: Field[] = [];
  for (const [name, property] of Object.entries(schema.properties)) {
    const required = schema.required?.includes(name) ?? false;
    if (Array.isArray(property.enum) && property.enum.every((v) => typeof v === 'string')) fields.push({ name, kind: 'enum', schema: property, required });
    else if (property.type === 'boolean' || property.type === 'string' || property.type === 'number' || property.type === 'integer') fields.push({ name, kind: property.type, schema: property, required });
    else return null;
  }
  return fields;
}

function readForm(fields: Field[], form: HTMLFormElement): Record<string, unknown> {
  const data = new FormData(form);
  const input: Record<string, unknown> = {};
  for (const field of fields) {
    const raw = data.get(field.name);
    if (field.kind === 'boolean') {
      input[field.name] = raw === 'on';
      continue;
    }
    const text = typeof raw === 'string' ? raw : '';
    if (text === '' && !field.required) continue;
    input[field.name] = field.kind === 'number' || field.kind === 'integer' ? Number(text) : text;
  }
  return input;
}

function InterruptForm({ interrupt, onDone }: { interrupt: Interrupt; onDone: () => void }) {
  const fields = formFields(interrupt.schema);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const prefix = `i-${interrupt.id}`;
  const submit = async (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    let input: unknown;
    try {
      input = fields ? readForm(fields, form) : JSON.parse(String(new FormData(form).get('json') ?? 'null'));
    } catch {
      setError(new Error('The answer is not valid JSON.'));
      return;
    }
    setBusy(true);
    try {
      await api('POST', `/v1/interrupts/${encodeURIComponent(interrupt.id)}/resume`, { input });
      setError(null);
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="interrupt-form" onSubmit={submit} aria-label={`Answer ${interrupt.step}`}>
      {fields ? (
        fields.map((field) => {
          const id = `${prefix}-${field.name}`;
          const label = field.schema.title ?? field.name;
          const help = field.schema.description ? <small id={`${id}-help`}>{field.schema.description}</small> : null;
          if (field.kind === 'boolean') {
            return (
              <label key={field.name} class="check" for={id}>
                <input id={id} type="checkbox" name={field.name} /> {label}
                {help}
              </label>
            );
          }
          return (
            <label key={field.name} for={id}>
              {label}
              {field.required ? ' (required)' : ''}
              {field.kind === 'enum' ? (
                <select id={id} name={field.name} required={field.required}>
                  {!field.required ? <option value="">—</option> : null}
                  {(field.schema.enum as string[]).map((value) => (
                    <option key={value} value={value}>
                      {value}
                    </option>
                  ))}
                </select>
              ) : (
                field.kind === 'string' ? (
                  <input id={id} name={field.name} type="text" required={field.required} />
                ) : (
                  <input id={id} name={field.name} type="number" step={field.kind === 'integer' ? 1 : 'any'} required={field.required} />
                )
              )}
              {help}
            </label>
          );
        })
      ) : (
        <label for={`${prefix}-json`}>
          Answer (JSON matching the schema)
          <textarea id={`${prefix}-json`} name="json" rows={4} required />
        </label>
      )}
      <div class="form-buttons">
        <button type="submit" disabled={busy}>
          Resume
        </button>
      </div>
      <ErrorNote error={error} />
    </form>
  );
}

export function Inbox() {
  const pending = useLoad(
    () => api<{ interrupts: Interrupt[] }>('GET', '/v1/interrupts?state=pending&limit=100'),
    [],
    (kind) => kind === 'job',
  );
  const list = pending.data?.interrupts ?? [];
  return (
    <div class="screen">
      <h1>Interrupts inbox</h1>
      <ErrorNote error={pending.error} />
      {pending.data && list.length === 0 ? <p class="muted">Nothing is waiting for an answer.</p> : null}
      {list.map((interrupt) => (
        <article key={interrupt.id} class="interrupt" data-interrupt={interrupt.id} aria-labelledby={`title-${interrupt.id}`}>
          <h2 id={`title-${interrupt.id}`}>
            <span class="mono">{interrupt.handler}</span> · {interrupt.step}
          </h2>
          <p class="prompt">{interrupt.prompt}</p>
          <p class="muted small">
            Job <a href={`#/jobs/${encodeURIComponent(interrupt.jobId)}`}>#{interrupt.jobId}</a> · asked <Time iso={interrupt.createdAt} />
            {interrupt.expiresAt ? (
              <>
                {' '}
                · times out <Time iso={interrupt.expiresAt} />
              </>
            ) : null}
          </p>
          <InterruptForm interrupt={interrupt} onDone={pending.reload} />
        </article>
      ))}
    </div>
  );
}
