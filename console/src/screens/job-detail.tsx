/** One job: payload, result, every attempt, a timeline; retry and cancel for admin keys. Re-read on its own stream messages. */
import { api, type Attempt, type Job } from '../api';
import { ActionButton, ErrorNote, Json, StateBadge, TableWrap, Time, useLoad } from '../ui';

/** A finished durable step (`ctx.step`), and the wait a suspended job is in. */
interface Step {
  name: string;
  kind: string;
  status: string;
  attempt: number;
  finishedAt: string | null;
  resultBytes: number | null;
}
interface Wait {
  reason: string;
  step: string;
  createdAt: string | null;
  wakeAt: string | null;
  events: string[] | null;
  interruptId: string | null;
}

const duration = (a: Attempt) => (a.startedAt && a.endedAt ? `${((Date.parse(a.endedAt) - Date.parse(a.startedAt)) / 1000).toFixed(2)} s` : '—');

export function JobDetail({ id, admin }: { id: string; admin: boolean }) {
  const job = useLoad(
    () => api<Job & { attempts: Attempt[]; steps?: Step[]; wait?: Wait | null }>('GET', `/v1/jobs/${encodeURIComponent(id)}`),
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
            <dd class="mono">{j.eventId ? <a href={`#/events/${encodeURIComponent(j.eventId)}`}>{j.eventId}</a> : '—'}</dd>
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
          {j.wait ? (
            <section aria-labelledby="wait-title" class="notice">
              <h2 id="wait-title">Waiting</h2>
              <p>
                Step <strong>{j.wait.step}</strong> waits for {j.wait.reason === 'interrupt' ? 'a person' : j.wait.reason === 'event' ? `an event (${(j.wait.events ?? []).join(', ')})` : 'its time'}
                {j.wait.wakeAt ? (
                  <>
                    {' '}
                    until <Time iso={j.wait.wakeAt} />
                  </>
                ) : null}
                . {j.wait.interruptId ? <a href="#/inbox">Answer it in the inbox</a> : null}
              </p>
            </section>
          ) : null}
          {j.steps && j.steps.length > 0 ? (
            <section aria-labelledby="steps-title">
              <h2 id="steps-title">Steps</h2>
              <TableWrap label="Steps">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Step</th>
                      <th scope="col">Kind</th>
                      <th scope="col">Status</th>
                      <th scope="col">Attempt</th>
                      <th scope="col">Finished</th>
                      <th scope="col">Result size</th>
                    </tr>
                  </thead>
                  <tbody>
                    {j.steps.map((step) => (
                      <tr key={step.name}>
                        <td class="mono">{step.name}</td>
                        <td>{step.kind}</td>
                        <td>{step.status}</td>
                        <td>{step.attempt}</td>
                        <td>
                          <Time iso={step.finishedAt} />
                        </td>
                        <td>{step.resultBytes ?? 0} B</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableWrap>
            </section>
          ) : null}
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
