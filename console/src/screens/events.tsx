/** An event and the jobs it fanned out to (`GET /v1/events/:id`), found by its id. */
import { useState } from 'preact/hooks';
import { api, type JobState } from '../api';
import { ErrorNote, Json, StateBadge, TableWrap, Time, navigate, useLoad } from '../ui';

interface EventDetail {
  id: string;
  name: string;
  data: unknown;
  tenant: string | null;
  receivedAt: string;
  jobs: Array<{ id: string; handler: string; queue: string; state: JobState; runAt: string | null }>;
}

export function Events({ id }: { id: string | null }) {
  const [text, setText] = useState(id ?? '');
  const event = useLoad(
    () => (id ? api<EventDetail>('GET', `/v1/events/${encodeURIComponent(id)}`) : Promise.resolve(null)),
    [id],
    (kind, data) => kind === 'job' && id !== null && (data as { eventId?: string }).eventId === id,
  );
  const e = event.data;
  return (
    <div class="screen">
      <h1>Events</h1>
      <form
        class="inline-form"
        onSubmit={(ev) => {
          ev.preventDefault();
          if (text.trim()) navigate(`/events/${encodeURIComponent(text.trim())}`);
        }}
      >
        <label>
          Event id <input name="event" value={text} onInput={(ev) => setText(ev.currentTarget.value)} />
        </label>
        <button type="submit">Open</button>
      </form>
      {!id ? <p class="muted">Open an event by its id (the producer's idempotency key, or the id the API answered with). A job's page links to the event that made it.</p> : null}
      <ErrorNote error={event.error} />
      {e ? (
        <>
          <dl class="facts">
            <dt>Name</dt>
            <dd class="mono">{e.name}</dd>
            <dt>Received</dt>
            <dd>
              <Time iso={e.receivedAt} />
            </dd>
            <dt>Tenant</dt>
            <dd>{e.tenant ?? '—'}</dd>
          </dl>
          <h2>Data</h2>
          <Json value={e.data} label="Event data" />
          <h2>Jobs it fanned out to</h2>
          <TableWrap label="Jobs of this event">
            <table>
              <thead>
                <tr>
                  <th scope="col">Job</th>
                  <th scope="col">Handler</th>
                  <th scope="col">Queue</th>
                  <th scope="col">State</th>
                </tr>
              </thead>
              <tbody>
                {e.jobs.map((job) => (
                  <tr key={job.id}>
                    <td>
                      <a href={`#/jobs/${encodeURIComponent(job.id)}`}>#{job.id}</a>
                    </td>
                    <td class="mono">{job.handler}</td>
                    <td>{job.queue}</td>
                    <td>
                      <StateBadge state={job.state} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
          {e.jobs.length === 0 ? <p class="muted">No handler subscribes to this event.</p> : null}
        </>
      ) : null}
    </div>
  );
}
