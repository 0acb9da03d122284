/**
 * Jobs: filters (state, handler, queue, created time, payload fields) kept in
 * the URL so a filtered view can be bookmarked and shared, keyset paging
 * ("Older"), and a jump to a job by id. The first page re-reads on stream
 * messages; older pages hold still.
 */
import { useState } from 'preact/hooks';
import { api, JOB_STATES, type Handler, type Job, type Queue } from '../api';
import { BulkActions } from './bulk';
import { ErrorNote, StateBadge, TableWrap, Time, navigate, useLoad } from '../ui';

const FILTERS = ['state', 'handler', 'queue', 'createdAfter', 'createdBefore'] as const;

/** `orderId = o-1` or `customer.id=c-9` → [path, value]; null when it is not that shape. */
export function parsePayloadFilter(text: string): [string, string] | null {
  const match = /^\s*(?:payload\.)?([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)\s*=\s*(.+?)\s*$/.exec(text);
  return match ? [match[1]!, match[2]!] : null;
}

/** The API query for the console's URL query: same names, payload filters as `payload.<path>=value`. */
function apiQuery(query: URLSearchParams): URLSearchParams {
  const out = new URLSearchParams();
  for (const name of FILTERS) {
    const value = query.get(name);
    if (!value) continue;
    out.set(name, name.startsWith('created') ? new Date(value).toISOString() : value);
  }
  for (const [name, value] of query) if (name.startsWith('payload.')) out.append(name, value);
  const cursor = query.get('cursor');
  if (cursor) out.set('cursor', cursor);
  out.set('limit', '50');
  return out;
}

export function Jobs({ query, admin }: { query: URLSearchParams; admin: boolean }) {
  const handlers = useLoad(() => api<{ handlers: Handler[] }>('GET', '/v1/handlers'), []);
  const queues = useLoad(() => api<{ queues: Queue[] }>('GET', '/v1/queues'), []);
  const key = query.toString();
  const firstPage = !query.get('cursor');
  const jobs = useLoad(() => api<{ jobs: Job[]; nextCursor: string | null }>('GET', `/v1/jobs?${apiQuery(query)}`), [key], (kind) => firstPage && kind === 'job');
  const payloadFilter = [...query].filter(([name]) => name.startsWith('payload.')).map(([name, value]) => `${name.slice(8)} = ${value}`)[0] ?? '';
  const [payloadText, setPayloadText] = useState(payloadFilter);
  const [payloadError, setPayloadError] = useState<string | null>(null);
  const [jumpId, setJumpId] = useState('');

  const submit = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const next = new URLSearchParams();
    for (const name of FILTERS) {
      const value = String(form.get(name) ?? '').trim();
      if (value) next.set(name, value);
    }
    if (payloadText.trim()) {
      const parsed = parsePayloadFilter(payloadText);
      if (!parsed) {
        setPayloadError('Write the payload filter as field = value, for example orderId = o-1');
        return;
      }
      next.set(`payload.${parsed[0]}`, parsed[1]);
    }
    setPayloadError(null);
    navigate('/jobs', next);
  };

  const older = () => {
    const next = new URLSearchParams(query);
    next.set('cursor', jobs.data!.nextCursor!);
    navigate('/jobs', next);
  };
  const newest = () => {
    const next = new URLSearchParams(query);
    next.delete('cursor');
    navigate('/jobs', next);
  };

  return (
    <div class="screen">
      <h1>Jobs</h1>
      <form
        class="inline-form"
        onSubmit={(event) => {
          event.preventDefault();
          if (jumpId.trim()) navigate(`/jobs/${encodeURIComponent(jumpId.trim())}`);
        }}
      >
        <label>
          Job id <input name="id" value={jumpId} onInput={(e) => setJumpId(e.currentTarget.value)} inputMode="numeric" />
        </label>
        <button type="submit">Open</button>
      </form>
      <form class="filters" onSubmit={submit} aria-label="Filter jobs">
        <label>
          State
          <select name="state" value={query.get('state') ?? ''}>
            <option value="">any</option>
            {JOB_STATES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Handler
          <select name="handler" value={query.get('handler') ?? ''}>
            <option value="">any</option>
            {(handlers.data?.handlers ?? []).map((h) => (
              <option key={h.name} value={h.name}>
                {h.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Queue
          <select name="queue" value={query.get('queue') ?? ''}>
            <option value="">any</option>
            {(queues.data?.queues ?? []).map((q) => (
              <option key={q.name} value={q.name}>
                {q.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Created after
          <input type="datetime-local" name="createdAfter" value={query.get('createdAfter') ?? ''} />
        </label>
        <label>
          Created before
          <input type="datetime-local" name="createdBefore" value={query.get('createdBefore') ?? ''} />
        </label>
        <label class="wide">
          Payload field
          <input name="payload" placeholder="orderId = o-1" value={payloadText} onInput={(e) => setPayloadText(e.currentTarget.value)} aria-describedby="payload-help" />
          <small id="payload-help">field = value; nested fields with dots (customer.id = c-9)</small>
        </label>
        <div class="form-buttons">
          <button type="submit">Apply filters</button>
          <button
            type="button"
            class="secondary"
            onClick={() => {
              setPayloadText('');
              navigate('/jobs');
            }}
          >
            Clear
          </button>
        </div>
      </form>
      {payloadError ? (
        <p class="error" role="alert">
          {payloadError}
        </p>
      ) : null}
      <ErrorNote error={jobs.error} />
      {admin ? <BulkActions key={key} query={query} /> : null}
      <TableWrap label="Jobs">
        <table data-testid="jobs-table">
          <thead>
            <tr>
              <th scope="col">Id</th>
              <th scope="col">Handler</th>
              <th scope="col">Queue</th>
              <th scope="col">State</th>
              <th scope="col">Attempts</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {(jobs.data?.jobs ?? []).map((job) => (
              <tr key={job.id} data-job={job.id}>
                <td>
                  <a href={`#/jobs/${encodeURIComponent(job.id)}`}>#{job.id}</a>
                </td>
                <td class="mono">{job.handler}</td>
                <td>{job.queue}</td>
                <td>
                  <StateBadge state={job.state} />
                </td>
                <td>
                  {job.attemptCount}/{job.maxAttempts}
                </td>
                <td>
                  <Time iso={job.createdAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      {jobs.data && jobs.data.jobs.length === 0 ? <p class="muted">No jobs match.</p> : null}
      <div class="pager">
        {!firstPage ? (
          <button type="button" class="secondary" onClick={newest}>
            Newest
          </button>
        ) : null}
        {jobs.data?.nextCursor ? (
          <button type="button" class="secondary" onClick={older}>
            Older
          </button>
        ) : null}
      </div>
    </div>
  );
}
