/** Admin-only screens: the audit trail (with a check of its hash chain on the page shown) and API keys. */
import { useState } from 'preact/hooks';
import { api, type Scope } from '../api';
import { ActionButton, ErrorNote, TableWrap, Time, useLoad } from '../ui';

interface AuditRecord {
  seq: number;
  time: string;
  action: string;
  actor: string;
  target?: string;
  hash: string;
  prevHash: string;
  [field: string]: unknown;
}

/**
 * Each record names the previous record's hash: on a page newest-first, every
 * record's `prevHash` must be the hash of the record below it. A broken link
 * means a record was removed or altered; `drover audit verify` checks the
 * signatures and the whole chain on the box.
 */
export function chainBreaks(records: AuditRecord[]): number[] {
  const breaks: number[] = [];
  for (let i = 0; i + 1 < records.length; i++) {
    const newer = records[i]!;
    const older = records[i + 1]!;
    if (newer.seq === older.seq + 1 && newer.prevHash !== older.hash) breaks.push(newer.seq);
  }
  return breaks;
}

export function Audit() {
  const [cursor, setCursor] = useState<string | null>(null);
  const page = useLoad(() => api<{ records: AuditRecord[]; nextCursor: string | null }>('GET', `/v1/audit?limit=50${cursor ? `&cursor=${cursor}` : ''}`), [cursor]);
  const records = page.data?.records ?? [];
  const breaks = chainBreaks(records);
  return (
    <div class="screen">
      <h1>Audit trail</h1>
      <ErrorNote error={page.error} />
      {page.data ? (
        <p class={breaks.length === 0 ? 'ok' : 'error'} data-testid="chain-status" role="status">
          {breaks.length === 0
            ? `Hash chain intact across the ${records.length} records shown.`
            : `Hash chain broken at record ${breaks.join(', ')}: run \`drover audit verify\` on the node.`}
        </p>
      ) : null}
      <TableWrap label="Audit records">
        <table>
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">When</th>
              <th scope="col">Action</th>
              <th scope="col">Target</th>
              <th scope="col">Key</th>
            </tr>
          </thead>
          <tbody>
            {records.map((r) => (
              <tr key={r.seq}>
                <td>{r.seq}</td>
                <td>
                  <Time iso={r.time} />
                </td>
                <td class="mono">{r.action}</td>
                <td class="mono">{r.target ?? ''}</td>
                <td class="mono">{r.actor}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      <div class="pager">
        {cursor ? (
          <button type="button" class="secondary" onClick={() => setCursor(null)}>
            Newest
          </button>
        ) : null}
        {page.data?.nextCursor ? (
          <button type="button" class="secondary" onClick={() => setCursor(page.data!.nextCursor)}>
            Older
          </button>
        ) : null}
      </div>
    </div>
  );
}

interface Key {
  id: string;
  name: string;
  scopes: Scope[];
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
}

export function Keys() {
  const keys = useLoad(() => api<{ keys: Key[] }>('GET', '/v1/keys'), []);
  const [created, setCreated] = useState<{ name: string; secret: string } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const create = async (event: Event) => {
    event.preventDefault();
    const formEl = event.currentTarget as HTMLFormElement;
    const form = new FormData(formEl);
    const scopes = (['read', 'produce', 'work', 'admin'] as const).filter((s) => form.get(`scope-${s}`));
    try {
      const answer = await api<{ name: string; secret: string }>('POST', '/v1/keys', { name: String(form.get('name') ?? ''), scopes });
      setCreated({ name: answer.name, secret: answer.secret });
      setError(null);
      formEl.reset();
      keys.reload();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <div class="screen">
      <h1>API keys</h1>
      <form class="filters" onSubmit={create} aria-label="Create a key">
        <label>
          Name <input name="name" required maxLength={100} />
        </label>
        <fieldset>
          <legend>Scopes</legend>
          {(['read', 'produce', 'work', 'admin'] as const).map((s) => (
            <label key={s} class="check">
              <input type="checkbox" name={`scope-${s}`} defaultChecked={s === 'read'} /> {s}
            </label>
          ))}
        </fieldset>
        <div class="form-buttons">
          <button type="submit">Create key</button>
        </div>
      </form>
      <ErrorNote error={error ?? keys.error} />
      {created ? (
        <div class="notice" role="status">
          Key <strong>{created.name}</strong> created. Copy the secret now: it is not shown again.
          <pre class="json">{created.secret}</pre>
        </div>
      ) : null}
      <TableWrap label="API keys">
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Id</th>
              <th scope="col">Scopes</th>
              <th scope="col">Created</th>
              <th scope="col">Expires</th>
              <th scope="col">Status</th>
            </tr>
          </thead>
          <tbody>
            {(keys.data?.keys ?? []).map((k) => (
              <tr key={k.id}>
                <th scope="row">{k.name}</th>
                <td class="mono">{k.id}</td>
                <td>{k.scopes.join(', ')}</td>
                <td>
                  <Time iso={k.createdAt} />
                </td>
                <td>
                  <Time iso={k.expiresAt} />
                </td>
                <td>
                  {k.revokedAt ? (
                    <span class="muted">
                      revoked <Time iso={k.revokedAt} />
                    </span>
                  ) : (
                    <ActionButton label="Revoke" danger run={() => api('POST', `/v1/keys/${encodeURIComponent(k.id)}/revoke`)} onDone={keys.reload} />
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
    </div>
  );
}
