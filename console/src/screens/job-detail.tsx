/** One job: payload, result, every attempt, a timeline; retry and cancel for admin keys. Re-read on its own stream messages. */
import { api, type Attempt, type Job } from '../api';
import { ActionButton, ErrorNote, Json, StateBadge, TableWrap, Time, useLoad } from '../ui';

const duration = (a: Attempt) => (a.startedAt && a.endedAt ? `${((Date.parse(a.endedAt) - Date.parse(a.startedAt)) / 1000).toFixed(2)} s` : '—');

export function JobDetail({ id, admin }: { id: string; admin: boolean }) {
  const job = useLoad(
    () => api<Job & { attempts: Attempt[] }>('GET', `/v1/jobs/${encodeURIComponent(id)}`),
    [id],
    (kind, data) => kind === 'job' && (data as { id?: string }).id === id,
  );
  const j = job.data;
  const timeline: Array<{ at: string | null; what: string }> = j
    ? [
        { at: j.createdAt, what: 'created' },
        ...j.attempts.flatMap((a) => [
          { at: a.startedAt, what: `attempt ${a.attempt} started${a.workerId ? ` on ${a.workerId}` : ''}` },
          ...(a.endedAt ? [{ at: a.endedAt, what: `attempt ${a.attempt} ${a.outcome ?? 'ended'}` }] : []),
        ]),
        ...(j.finishedAt ? [{ at: j.finishedAt, what: j.state }] : []),
      ].filter((entry) => entry.at !== null)
    : [];
  const finished = j && (j.state === 'succeeded' || j.state === 'dead' || j.state === 'cancelled');
  return (
    <div class="screen">
      <p>
        <a href="#/jobs">← Jobs</a>
      </p>
      <h1>
        Job #{id} {j ? <StateBadge state={j.state} /> : null}
      </h1>
      <ErrorNote error={job.error} />
      {j ? (
        <>
          {admin ? (
            <div class="actions">
              {j.state === 'dead' || j.state === 'cancelled' ? <ActionButton label="Retry" run={() => api('POST', `/v1/jobs/${encodeURIComponent(id)}/retry`)} onDone={job.reload} /> : null}
              {!finished ? <ActionButton label="Cancel" danger run={() => api('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`)} onDone={job.reload} /> : null}
            </div>
          ) : null}
          <dl class="facts">
            <dt>Handler</dt>
            <dd class="mono">{j.handler}</dd>
            <dt>Queue</dt>
            <dd>{j.queue}</dd>
            <dt>Attempts</dt>
            <dd>
              {j.attemptCount} of {j.maxAttempts}
            </dd>
            <dt>Priority</dt>
            <dd>{j.priority}</dd>
            <dt>Run at</dt>
            <dd>
              <Time iso={j.runAt} />
            </dd>
            <dt>Event</dt>
            <dd class="mono">{j.eventId ?? '—'}</dd>
            {j.lastError ? (
              <>
                <dt>Last error</dt>
                <dd class="mono error-text">{j.lastError}</dd>
              </>
            ) : null}
            {j.deadReason ? (
              <>
                <dt>Dead because</dt>
                <dd>{j.deadReason}</dd>
              </>
            ) : null}
          </dl>
          <div class="columns">
            <section aria-labelledby="payload-title">
              <h2 id="payload-title">Payload</h2>
              <Json value={j.payload} label="Payload" />
            </section>
            <section aria-labelledby="result-title">
              <h2 id="result-title">Result</h2>
              <Json value={j.result} label="Result" />
            </section>
          </div>
          <section aria-labelledby="attempts-title">
            <h2 id="attempts-title">Attempts</h2>
            <TableWrap label="Attempts">
              <table>
                <thead>
                  <tr>
                    <th scope="col">#</th>
                    <th scope="col">Worker</th>
                    <th scope="col">Started</th>
                    <th scope="col">Duration</th>
                    <th scope="col">Outcome</th>
                    <th scope="col">Error</th>
                  </tr>
                </thead>
                <tbody>
                  {j.attempts.map((a) => (
                    <tr key={a.attempt}>
                      <td>{a.attempt}</td>
                      <td class="mono">{a.workerId ?? '—'}</td>
                      <td>
                        <Time iso={a.startedAt} />
                      </td>
                      <td>{duration(a)}</td>
                      <td>{a.outcome ?? 'running'}</td>
                      <td class="mono">{a.error ?? ''}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
          </section>
          <section aria-labelledby="timeline-title">
            <h2 id="timeline-title">Timeline</h2>
            <ol class="timeline">
              {timeline.map((entry, i) => (
                <li key={i}>
                  <Time iso={entry.at} /> {entry.what}
                </li>
              ))}
            </ol>
          </section>
        </>
      ) : null}
    </div>
  );
}
