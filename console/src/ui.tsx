/** Small pieces every screen uses: times, state badges, JSON, loading and errors, the hash router. */
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { subscribe, throttle } from './live';

const local = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** A timestamp in the viewer's zone, UTC on hover (and for screen readers, in `datetime`). */
export function Time({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <span class="muted">—</span>;
  const date = new Date(iso);
  return (
    <time dateTime={iso} title={`${date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}`}>
      {local.format(date)}
    </time>
  );
}

export function Age({ seconds }: { seconds: number }) {
  if (seconds <= 0) return <span class="muted">—</span>;
  if (seconds < 60) return <>{Math.round(seconds)} s</>;
  if (seconds < 3600) return <>{Math.round(seconds / 60)} min</>;
  return <>{(seconds / 3600).toFixed(1)} h</>;
}

export function StateBadge({ state }: { state: string }) {
  return <span class={`badge state-${state}`}>{state}</span>;
}

export function Json({ value, label }: { value: unknown; label: string }) {
  return (
    <pre class="json" tabIndex={0} aria-label={label}>
      {value === undefined || value === null ? 'null' : JSON.stringify(value, null, 2)}
    </pre>
  );
}

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error instanceof Error ? error.message : String(error)}
    </p>
  );
}

/** A table that scrolls sideways on a phone; focusable so the keyboard can scroll it too. */
export function TableWrap({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <div class="table-wrap" role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}

/**
 * Load with `load`, again whenever `deps` change and (throttled) whenever the
 * stream says something `relevant` happened.
 */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[], relevant?: (kind: string, data: unknown) => boolean) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const reload = useCallback(() => {
    load().then(
      (value) => {
        setData(value);
        setError(null);
      },
      (err: unknown) => setError(err),
    );
  }, deps);
  useEffect(() => {
    reload();
    if (!relevant) return;
    const again = throttle(reload, 750);
    const off = subscribe((kind, message) => {
      if (kind === 'gap' || (kind === 'open' && data !== null) || relevant(kind, message)) again();
    });
    return () => {
      off();
      again.cancel();
    };
  }, [reload]);
  return { data, error, reload };
}

/** The current hash route: `#/jobs/42?x=1` → { path: '/jobs/42', query }. */
export function useRoute(): { path: string; query: URLSearchParams } {
  const read = () => {
    const hash = location.hash.replace(/^#/, '') || '/';
    const [path, search] = hash.split('?', 2);
    return { path: path || '/', query: new URLSearchParams(search ?? '') };
  };
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

export function navigate(path: string, query?: URLSearchParams): void {
  const search = query && [...query.keys()].length > 0 ? `?${query}` : '';
  location.hash = `#${path}${search}`;
}

/** A button for an operator action: disabled while it runs, its error shown beside it. */
export function ActionButton({ label, run, danger, onDone }: { label: string; run: () => Promise<unknown>; danger?: boolean; onDone?: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  return (
    <span class="action">
      <button
        type="button"
        class={danger ? 'danger' : ''}
        disabled={busy}
        onClick={async () => {
          setBusy(true);
          setError(null);
          try {
            await run();
            onDone?.();
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        {label}
      </button>
      {error ? (
        <span class="error" role="alert">
          {error instanceof Error ? error.message : String(error)}
        </span>
      ) : null}
    </span>
  );
}
