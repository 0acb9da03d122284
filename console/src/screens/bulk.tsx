/**
 * Bulk retry and cancel of what the jobs list's filters match: the node does
 * the work (`POST /v1/jobs/bulk`) and this shows its progress, re-read when
 * the stream reports job changes and once a second while the run goes on.
 */
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { ErrorNote, useLoad } from '../ui';

interface BulkRun {
  id: string;
  action: 'retry' | 'cancel';
  state: 'running' | 'done' | 'interrupted' | 'failed';
  matched: number;
  changed: number;
  skipped: number;
  error: string | null;
}

/** The bulk filter for the list's URL query (null: no filter, so no bulk action). */
export function bulkFilter(query: URLSearchParams): Record<string, unknown> | null {
  const filter: Record<string, unknown> = {};
  for (const name of ['state', 'handler', 'queue'] as const) {
    const value = query.get(name);
    if (value) filter[name] = value;
  }
  for (const name of ['createdAfter', 'createdBefore'] as const) {
    const value = query.get(name);
    if (value) filter[name] = new Date(value).toISOString();
  }
  const payload: Record<string, string> = {};
  for (const [name, value] of query) if (name.startsWith('payload.')) payload[name.slice('payload.'.length)] = value;
  if (Object.keys(payload).length > 0) filter.payload = payload;
  return Object.keys(filter).length > 0 ? filter : null;
}

function Progress({ id }: { id: string }) {
  const run = useLoad(() => api<BulkRun>('GET', `/v1/jobs/bulk/${encodeURIComponent(id)}`), [id], (kind) => kind === 'job');
  const running = run.data?.state === 'running';
  useEffect(() => {
    if (!running) return;
    const timer = setInterval(run.reload, 1000);
    return () => clearInterval(timer);
  }, [running, run.reload]);
  if (!run.data) return <ErrorNote error={run.error} />;
  const r = run.data;
  return (
    <p class={r.state === 'failed' ? 'error' : 'notice'} role="status" data-testid="bulk-progress" data-state={r.state}>
      {r.action === 'retry' ? 'Retry' : 'Cancel'} of the matching jobs: <strong>{r.state}</strong> · {r.matched} matched · {r.changed} changed · {r.skipped} skipped
      {r.error ? ` · ${r.error}` : ''}
    </p>
  );
}

export function BulkActions({ query }: { query: URLSearchParams }) {
  const filter = bulkFilter(query);
  const [asking, setAsking] = useState<'retry' | 'cancel' | null>(null);
  const [runId, setRunId] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  if (!filter) return null;
  const start = async (action: 'retry' | 'cancel') => {
    try {
      const run = await api<BulkRun>('POST', '/v1/jobs/bulk', { action, filter });
      setRunId(run.id);
      setError(null);
    } catch (err) {
      setError(err);
    } finally {
      setAsking(null);
    }
  };
  return (
    <div class="bulk">
      {asking ? (
        <div class="actions" role="group" aria-label="Confirm the bulk action">
          <span>
            {asking === 'retry' ? 'Retry every dead or cancelled job' : 'Cancel every unfinished job'} these filters match, on the node?
          </span>
          <button type="button" class={asking === 'cancel' ? 'danger' : ''} onClick={() => start(asking)}>
            Yes, {asking} them
          </button>
          <button type="button" class="secondary" onClick={() => setAsking(null)}>
            Keep them
          </button>
        </div>
      ) : (
        <div class="actions">
          <button type="button" class="secondary" onClick={() => setAsking('retry')}>
            Retry all matching
          </button>
          <button type="button" class="secondary" onClick={() => setAsking('cancel')}>
            Cancel all matching
          </button>
        </div>
      )}
      <ErrorNote error={error} />
      {runId ? <Progress id={runId} /> : null}
    </div>
  );
}
