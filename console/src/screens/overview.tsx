/**
 * Overview: throughput and outcomes over the last minutes (counted from the
 * live stream since the console opened, in live.ts), queue depth and oldest age, running
 * jobs, open breakers and quarantined handlers. Every re-read is triggered
 * by a stream message and throttled; nothing polls.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, type Handler, type Job, type JobMessage, type Queue } from '../api';
import { BUCKET_MS, BUCKETS, recentJobs, subscribe, throughput, type Bucket } from '../live';
import { Age, ErrorNote, StateBadge, TableWrap, Time, useLoad } from '../ui';

/** Re-render on every job message and as time moves the chart along; reads nothing from the node. */
function useLiveTick(): void {
  const [, setTick] = useState(0);
  useEffect(() => {
    const bump = () => setTick((n) => n + 1);
    const timer = setInterval(bump, BUCKET_MS);
    const off = subscribe((kind) => {
      if (kind === 'job') bump();
    });
    return () => {
      clearInterval(timer);
      off();
    };
  }, []);
}

function ThroughputChart({ buckets }: { buckets: Bucket[] }) {
  const max = Math.max(1, ...buckets.map((b) => b.succeeded + b.failed));
  const total = buckets.reduce((sum, b) => ({ ok: sum.ok + b.succeeded, failed: sum.failed + b.failed }), { ok: 0, failed: 0 });
  const width = 300;
  const height = 80;
  const barWidth = width / BUCKETS;
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`Last 5 minutes: ${total.ok} succeeded, ${total.failed} failed attempts`}>
        {buckets.map((b, i) => {
          const okHeight = (b.succeeded / max) * (height - 4);
          const failHeight = (b.failed / max) * (height - 4);
          return (
            <g key={b.start}>
              <rect class="bar-ok" x={i * barWidth + 1} y={height - okHeight} width={barWidth - 2} height={okHeight} />
              <rect class="bar-failed" x={i * barWidth + 1} y={height - okHeight - failHeight} width={barWidth - 2} height={failHeight} />
            </g>
          );
        })}
      </svg>
      <figcaption>
        Last 5 minutes (10 s bars, since the console opened): <strong class="ok">{total.ok} succeeded</strong>, <strong class="failed">{total.failed} failed attempts</strong>
      </figcaption>
    </figure>
  );
}

function LiveActivity({ messages }: { messages: readonly JobMessage[] }) {
  return (
    <section aria-labelledby="activity-title">
      <h2 id="activity-title">Live activity</h2>
      {messages.length === 0 ? (
        <p class="muted">Waiting for jobs…</p>
      ) : (
        <ul class="activity" aria-live="polite" data-testid="activity">
          {messages.map((m) => (
            <li key={m.id} data-job={m.id} data-state={m.state}>
              <a href={`#/jobs/${encodeURIComponent(m.id)}`}>#{m.id}</a> <span class="mono">{m.handler}</span> <StateBadge state={m.state} />
              {m.outcome ? <span class="muted"> {m.outcome}</span> : null} <Time iso={m.at} />
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export function Overview({ interrupts }: { interrupts: boolean }) {
  useLiveTick();
  const buckets = throughput();
  const jobEvent = (kind: string) => kind === 'job';
  const queues = useLoad(() => api<{ queues: Queue[] }>('GET', '/v1/queues'), [], (kind) => kind === 'job' || kind === 'queue');
  const handlers = useLoad(() => api<{ handlers: Handler[] }>('GET', '/v1/handlers'), [], () => true);
  const running = useLoad(() => api<{ jobs: Job[] }>('GET', '/v1/jobs?state=running&limit=20'), [], jobEvent);
  const pending = useLoad(
    () => (interrupts ? api<{ interrupts: unknown[] }>('GET', '/v1/interrupts?state=pending&limit=100') : Promise.resolve(null)),
    [interrupts],
    jobEvent,
  );
  const all = handlers.data?.handlers ?? [];
  const open = all.filter((h) => h.breaker.state !== 'closed');
  const quarantined = all.filter((h) => h.quarantined);
  const depth = (queues.data?.queues ?? []).reduce((n, q) => n + (q.counts.queued ?? 0), 0);
  // From the queues' counts: every running job in the store (remote workers' too), not just the list's first 20.
  const runningCount = (queues.data?.queues ?? []).reduce((n, q) => n + (q.counts.running ?? 0), 0);
  return (
    <div class="screen">
      <h1>Overview</h1>
      <ErrorNote error={queues.error ?? handlers.error ?? running.error} />
      <div class="cards">
        <div class="card">
          <span class="card-label">Queued</span>
          <span class="card-value" data-testid="queued-total">{depth}</span>
        </div>
        <div class="card">
          <span class="card-label">Running</span>
          <span class="card-value">{queues.data ? runningCount : '…'}</span>
        </div>
        <div class={`card ${open.length > 0 ? 'warn' : ''}`}>
          <span class="card-label">Open breakers</span>
          <span class="card-value">{open.length}</span>
        </div>
        <div class={`card ${quarantined.length > 0 ? 'alert' : ''}`}>
          <span class="card-label">Quarantined</span>
          <span class="card-value">{quarantined.length}</span>
        </div>
        {interrupts ? (
          <a class={`card ${(pending.data?.interrupts.length ?? 0) > 0 ? 'warn' : ''}`} href="#/inbox">
            <span class="card-label">Pending interrupts</span>
            <span class="card-value" data-testid="pending-interrupts">
              {pending.data ? `${pending.data.interrupts.length}${pending.data.interrupts.length === 100 ? '+' : ''}` : '…'}
            </span>
          </a>
        ) : null}
      </div>
      <ThroughputChart buckets={buckets} />
      {open.length + quarantined.length > 0 ? (
        <section aria-labelledby="attention-title">
          <h2 id="attention-title">Needs attention</h2>
          <ul>
            {quarantined.map((h) => (
              <li key={`q-${h.name}`}>
                <a href="#/handlers">{h.name}</a> is quarantined since <Time iso={h.quarantinedAt} />
              </li>
            ))}
            {open.map((h) => (
              <li key={`b-${h.name}`}>
                <a href="#/handlers">{h.name}</a>: breaker {h.breaker.state}
              </li>
            ))}
          </ul>
        </section>
      ) : null}
      <div class="columns">
        <section aria-labelledby="queues-title">
          <h2 id="queues-title">Queues</h2>
          <TableWrap label="Queues">
            <table>
              <thead>
                <tr>
                  <th scope="col">Queue</th>
                  <th scope="col">Queued</th>
                  <th scope="col">Running</th>
                  <th scope="col">Oldest</th>
                </tr>
              </thead>
              <tbody>
                {(queues.data?.queues ?? []).map((q) => (
                  <tr key={q.name}>
                    <td>
                      {q.name} {q.paused ? <span class="badge state-paused">paused</span> : null}
                    </td>
                    <td>{q.counts.queued ?? 0}</td>
                    <td>{q.counts.running ?? 0}</td>
                    <td>
                      <Age seconds={q.oldestQueuedAgeSeconds} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        </section>
        <section aria-labelledby="running-title">
          <h2 id="running-title">Running jobs</h2>
          {(running.data?.jobs ?? []).length === 0 ? (
            <p class="muted">Nothing running.</p>
          ) : (
            <ul>
              {running.data!.jobs.map((j) => (
                <li key={j.id}>
                  <a href={`#/jobs/${encodeURIComponent(j.id)}`}>#{j.id}</a> <span class="mono">{j.handler}</span> attempt {j.attemptCount}
                </li>
              ))}
            </ul>
          )}
        </section>
      </div>
      <LiveActivity messages={recentJobs()} />
    </div>
  );
}
