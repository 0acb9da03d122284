/** Handlers (policy, running, breaker, quarantine, pause) and queues (depth, pause); actions for admin keys only. */
import { api, type Handler, type Queue } from '../api';
import { ActionButton, Age, ErrorNote, TableWrap, Time, useLoad } from '../ui';

export function Handlers({ admin }: { admin: boolean }) {
  const handlers = useLoad(() => api<{ handlers: Handler[] }>('GET', '/v1/handlers'), [], () => true);
  const act = (name: string, action: 'pause' | 'resume' | 'reset') => () => api('POST', `/v1/handlers/${encodeURIComponent(name)}/${action}`);
  return (
    <div class="screen">
      <h1>Handlers</h1>
      <ErrorNote error={handlers.error} />
      <TableWrap label="Handlers">
        <table data-testid="handlers-table">
          <thead>
            <tr>
              <th scope="col">Handler</th>
              <th scope="col">Policy</th>
              <th scope="col">Running</th>
              <th scope="col">Breaker</th>
              <th scope="col">Quarantine</th>
              {admin ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {(handlers.data?.handlers ?? []).map((h) => (
              <tr key={h.name} data-handler={h.name}>
                <th scope="row" class="mono">
                  {h.name} {h.paused ? <span class="badge state-paused">paused</span> : null}
                </th>
                <td class="small">
                  queue {h.queue} · concurrency {h.concurrency} · {h.maxAttempts} attempts · timeout {h.timeoutMs / 1000} s{h.remote ? ' · remote' : ''}
                  {h.triggers.length > 0 ? ` · on ${h.triggers.join(', ')}` : ''}
                  {h.cron ? ` · cron ${h.cron}` : ''}
                </td>
                <td>{h.running}</td>
                <td>
                  <span class={`badge breaker-${h.breaker.state}`}>{h.breaker.state}</span>
                </td>
                <td data-testid="quarantine">
                  {h.quarantined ? (
                    <span class="badge state-dead">
                      quarantined <Time iso={h.quarantinedAt} />
                    </span>
                  ) : (
                    <span class="muted">{h.recentFailures} recent failures</span>
                  )}
                </td>
                {admin ? (
                  <td class="actions">
                    {h.paused ? <ActionButton label="Resume" run={act(h.name, 'resume')} onDone={handlers.reload} /> : <ActionButton label="Pause" run={act(h.name, 'pause')} onDone={handlers.reload} />}
                    {h.quarantined || h.breaker.state !== 'closed' ? <ActionButton label="Reset" danger run={act(h.name, 'reset')} onDone={handlers.reload} /> : null}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
    </div>
  );
}

export function Queues({ admin }: { admin: boolean }) {
  const queues = useLoad(() => api<{ queues: Queue[] }>('GET', '/v1/queues'), [], (kind) => kind === 'job' || kind === 'queue');
  const act = (name: string, action: 'pause' | 'resume') => () => api('POST', `/v1/queues/${encodeURIComponent(name)}/${action}`);
  return (
    <div class="screen">
      <h1>Queues</h1>
      <ErrorNote error={queues.error} />
      <TableWrap label="Queues">
        <table>
          <thead>
            <tr>
              <th scope="col">Queue</th>
              <th scope="col">Scheduled</th>
              <th scope="col">Queued</th>
              <th scope="col">Running</th>
              <th scope="col">Dead</th>
              <th scope="col">Oldest queued</th>
              <th scope="col">Max depth</th>
              {admin ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {(queues.data?.queues ?? []).map((q) => (
              <tr key={q.name} data-queue={q.name}>
                <th scope="row">
                  {q.name} {q.paused ? <span class="badge state-paused">paused</span> : null}
                </th>
                <td>{q.counts.scheduled ?? 0}</td>
                <td>{q.counts.queued ?? 0}</td>
                <td>{q.counts.running ?? 0}</td>
                <td>{q.counts.dead ?? 0}</td>
                <td>
                  <Age seconds={q.oldestQueuedAgeSeconds} />
                </td>
                <td>{q.maxDepth ?? '∞'}</td>
                {admin ? (
                  <td class="actions">
                    {q.paused ? <ActionButton label="Resume" run={act(q.name, 'resume')} onDone={queues.reload} /> : <ActionButton label="Pause" run={act(q.name, 'pause')} onDone={queues.reload} />}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
    </div>
  );
}
