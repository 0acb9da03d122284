/** The console shell: sign-in, navigation, theme, and the screen for the current hash route. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, currentSession, isAdmin, onSignedOut, signIn, signOut, type Me } from './api';
import { startLive, stopLive, subscribe, liveStatus } from './live';
import { Audit, Keys } from './screens/admin';
import { Events } from './screens/events';
import { Handlers, Queues } from './screens/handlers';
import { JobDetail } from './screens/job-detail';
import { Inbox } from './screens/inbox';
import { Jobs } from './screens/jobs';
import { Overview } from './screens/overview';
import { useRoute } from './ui';
import './style.css';

type Theme = 'light' | 'dark' | 'system';

function applyTheme(theme: Theme): void {
  if (theme === 'system') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
}

function SignIn({ onSignedIn }: { onSignedIn: (me: Me) => void }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <main class="sign-in" id="main">
      <h1>Drover console</h1>
      <form
        onSubmit={async (event) => {
          event.preventDefault();
          const form = event.currentTarget;
          const key = String(new FormData(form).get('key') ?? '');
          setBusy(true);
          try {
            const me = await signIn(key);
            form.reset(); // the key leaves the page as soon as it has been exchanged
            onSignedIn(me);
          } catch (err) {
            setError(err instanceof ApiError && err.status === 401 ? 'That key is unknown, revoked or expired.' : err instanceof Error ? err.message : String(err));
          } finally {
            setBusy(false);
          }
        }}
      >
        <label for="key">API key</label>
        <input id="key" name="key" type="password" autoComplete="off" required spellcheck={false} />
        <p class="muted small">The key is exchanged for a session cookie and not kept in the browser. Create one with <code>drover keys create</code>.</p>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {error ? (
          <p class="error" role="alert">
            {error}
          </p>
        ) : null}
      </form>
    </main>
  );
}

const NAV: Array<{ path: string; label: string; admin?: boolean; resume?: boolean; reads?: boolean }> = [
  { path: '/', label: 'Overview', reads: true },
  { path: '/jobs', label: 'Jobs', reads: true },
  { path: '/events', label: 'Events', reads: true },
  { path: '/handlers', label: 'Handlers', reads: true },
  { path: '/queues', label: 'Queues', reads: true },
  { path: '/inbox', label: 'Inbox', resume: true },
  { path: '/audit', label: 'Audit', admin: true },
  { path: '/keys', label: 'Keys', admin: true },
];

function LiveIndicator() {
  const [status, setStatus] = useState(liveStatus());
  useEffect(() => subscribe(() => setStatus(liveStatus())), []);
  return (
    <span class={`live live-${status}`} role="status" aria-live="polite">
      {status === 'live' ? 'live' : status}
    </span>
  );
}

function Shell({ me, onSignOut }: { me: Me; onSignOut: () => void }) {
  const { path, query } = useRoute();
  const admin = isAdmin(me);
  // Interrupts are answered with the resume scope (admin has it too); other keys see no inbox.
  const answers = admin || me.key.scopes.includes('resume');
  // A resume-only key (a person who answers interrupts) reads nothing else: the inbox is its console.
  const reads = admin || me.key.scopes.includes('read') || me.key.scopes.includes('produce');
  const [theme, setTheme] = useState<Theme>(() => (localStorage.getItem('drover-theme') as Theme | null) ?? 'system');
  useEffect(() => {
    applyTheme(theme);
    localStorage.setItem('drover-theme', theme); // a display preference, nothing secret
  }, [theme]);
  useEffect(() => {
    if (!reads) return; // the stream needs read or produce: a resume-only key would be refused, and retry forever
    startLive();
    return stopLive;
  }, [reads]);
  const section = '/' + (path.split('/')[1] ?? '');
  let screen;
  if (!reads && path !== '/inbox') screen = <Inbox />;
  else if (path === '/') screen = <Overview interrupts={answers} />;
  else if (path === '/jobs') screen = <Jobs query={query} admin={admin} />;
  else if (path.startsWith('/jobs/')) screen = <JobDetail id={decodeURIComponent(path.slice(6))} admin={admin} />;
  else if (path === '/events' || path.startsWith('/events/')) screen = <Events id={path.startsWith('/events/') ? decodeURIComponent(path.slice(8)) : null} />;
  else if (path === '/handlers') screen = <Handlers admin={admin} />;
  else if (path === '/queues') screen = <Queues admin={admin} />;
  else if (path === '/inbox' && answers) screen = <Inbox />;
  else if (path === '/audit' && admin) screen = <Audit />;
  else if (path === '/keys' && admin) screen = <Keys />;
  else screen = <p>No such page. <a href="#/">Back to the overview</a></p>;
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Drover</span>
        <nav aria-label="Sections">
          <ul>
            {NAV.filter((item) => (!item.admin || admin) && (!item.resume || answers) && (!item.reads || reads)).map((item) => (
              <li key={item.path}>
                <a href={`#${item.path}`} aria-current={section === item.path || (!reads && item.path === '/inbox') ? 'page' : undefined}>
                  {item.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="session">
          <LiveIndicator />
          <label class="theme">
            <span class="visually-hidden">Theme</span>
            <select value={theme} onChange={(e) => setTheme(e.currentTarget.value as Theme)}>
              <option value="system">System theme</option>
              <option value="light">Light</option>
              <option value="dark">Dark</option>
            </select>
          </label>
          <span class="who" title={`key ${me.key.id}: ${me.key.scopes.join(', ')}`}>
            {me.key.name} <span class="muted">({me.key.scopes.join(', ')})</span>
          </span>
          <button type="button" class="secondary" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {screen}
      </main>
    </>
  );
}

function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    currentSession().then(setMe, setError);
    return onSignedOut(() => setMe(null));
  }, []);
  if (error) return <p class="error" role="alert">The node did not answer: {String(error)}</p>;
  if (me === undefined) return <p class="muted">Loading…</p>;
  if (me === null) return <SignIn onSignedIn={setMe} />;
  return (
    <Shell
      me={me}
      onSignOut={async () => {
        try {
          await signOut();
        } finally {
          setMe(null);
        }
      }}
    />
  );
}

applyTheme((localStorage.getItem('drover-theme') as Theme | null) ?? 'system');
render(<App />, document.getElementById('app')!);
