/**
 * The leak check (a vitest setup file): a test file fails when it leaves
 * behind a timer, socket, server, child process or worker thread that was not
 * there when it began. A leaked handle keeps a real node's process from
 * exiting and outlives the thing that should own it; in a test run it only
 * shows up as a slow teardown or a hang much later.
 *
 * Per file, not per test: many files share one node across their tests
 * (beforeAll) and that node opens connections and threads lazily, so what a
 * test leaves running may rightly belong to the file. The file's own afterAll
 * hooks run first (hooks unwind as a stack), then this check compares against
 * the snapshot taken before the file's first hook; each leftover is named with
 * the test after which it first appeared.
 *
 * What is counted: process.getActiveResourcesInfo() (handles that keep the
 * event loop alive: unref'd timers and sockets are not in it), by type; and
 * worker threads, which that list does not show, tracked by wrapping
 * `Worker`. Closing is asynchronous (a socket's close, a child's exit), so the
 * check polls until clean for up to SETTLE_MS before it fails.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';
import type { Worker as WorkerType } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';

const SETTLE_MS = 2_000;
const BASELINE_SAMPLES = 3;

/**
 * Handle types that mean a connection, server, child process or watcher is still running. Not PipeWrap:
 * process.stdout/stderr open theirs on first use (a worker thread's console output), and opening them up
 * front makes the shared pipe non-blocking for child processes that inherit it (it broke
 * test/multinode/coordination.test.ts); a child's own stdio pipes go with its ProcessWrap.
 */
const WATCHED = new Set(['TCPSocketWrap', 'TCPServerWrap', 'PipeServerWrap', 'ProcessWrap', 'UDPWrap', 'FSEventWrap', 'StatWatcher']);

/**
 * Named exceptions: a handle type and the number of them a file may leave,
 * with the reason. Empty: every leak found so far was fixed at its source.
 */
const ALLOWED: Record<string, { count: number; why: string }> = {};

type Counts = Map<string, number>;

const REGISTRY = Symbol.for('drover.test.liveWorkers');
const TIMERS = Symbol.for('drover.test.liveTimers');
const CURRENT = Symbol.for('drover.test.currentTest');

let currentTest = '(file setup)';
const liveWorkers = trackWorkers();
const liveTimers = trackTimers();

let baseline: Counts = new Map();
let workersAtStart = new Set<WorkerType>();
let timersAtStart = new Set<NodeJS.Timeout>();
const firstSeen = new Map<string, string>();

beforeAll(async () => {
  // The runner's own handles come and go (an RPC's timeout timer): the baseline is the least seen over a few ticks.
  baseline = counts();
  for (let i = 0; i < BASELINE_SAMPLES; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    for (const [type, n] of baseline) baseline.set(type, Math.min(n, counts().get(type) ?? 0));
  }
  workersAtStart = new Set(liveWorkers.keys());
  timersAtStart = new Set(pruneTimers().keys());
});

beforeEach((context) => {
  currentTest = context.task.name;
  (globalThis as { [CURRENT]?: string })[CURRENT] = currentTest;
});

afterEach(() => {
  // Attribution only: a test's leftovers may still be closing here.
  for (const [type, extra] of excess()) if (extra > 0 && !firstSeen.has(type)) firstSeen.set(type, currentTest);
  pruneTimers();
  currentTest = '(file teardown)';
  (globalThis as { [CURRENT]?: string })[CURRENT] = currentTest;
});

afterAll(async () => {
  const deadline = Date.now() + SETTLE_MS;
  let leaks = findLeaks();
  while (leaks.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    leaks = findLeaks();
  }
  if (leaks.length > 0) {
    const grouped = new Map<string, number>();
    for (const leak of leaks) grouped.set(leak, (grouped.get(leak) ?? 0) + 1);
    const lines = [...grouped].map(([leak, n]) => (n > 1 ? `${n} x ${leak}` : leak));
    throw new Error(`this test file left running after its last hook (still there ${SETTLE_MS} ms later):\n  ${lines.join('\n  ')}\nclose, clear or kill it in the test's afterEach/afterAll (or the code under test leaks it)`);
  }
});

function counts(): Counts {
  const result: Counts = new Map();
  for (const type of process.getActiveResourcesInfo()) if (WATCHED.has(type)) result.set(type, (result.get(type) ?? 0) + 1);
  return result;
}

function excess(): Counts {
  const result: Counts = new Map();
  for (const [type, n] of counts()) {
    const extra = n - (baseline.get(type) ?? 0) - (ALLOWED[type]?.count ?? 0);
    if (extra > 0) result.set(type, extra);
  }
  return result;
}

function findLeaks(): string[] {
  const leaks: string[] = [];
  for (const [type, extra] of excess()) leaks.push(`${extra} x ${type} (${describeType(type)}), first seen after test "${firstSeen.get(type) ?? 'the file teardown'}"`);
  for (const [timer, createdIn] of pruneTimers()) {
    if (!timersAtStart.has(timer)) leaks.push(`a ref’d ${createdIn.kind} of ${createdIn.ms} ms (created during "${createdIn.test}") is still active${createdIn.stack ? `:\n${createdIn.stack}` : ''}`);
  }
  for (const [worker, createdIn] of liveWorkers) {
    // threadId is -1 once the thread has exited, even when its 'exit' listeners were removed before it.
    if (worker.threadId === -1) liveWorkers.delete(worker);
    else if (!workersAtStart.has(worker)) leaks.push(`worker thread ${worker.threadId} (created during "${createdIn}") has not exited`);
  }
  return leaks;
}

function describeType(type: string): string {
  if (type === 'TCPSocketWrap') return 'an open connection';
  if (type === 'TCPServerWrap' || type === 'PipeServerWrap') return 'a listening server';
  if (type === 'ProcessWrap') return 'a child process not yet exited';
  return 'an open handle';
}

/**
 * Wrap `worker_threads.Worker` so every thread is known until it exits.
 * syncBuiltinESMExports makes `import { Worker } from 'node:worker_threads'`
 * see the wrapper too. A process reused across files wraps once and shares
 * one registry (each file compares against its own snapshot of it).
 */
function trackWorkers(): Map<WorkerType, string> {
  const shared = globalThis as { [REGISTRY]?: Map<WorkerType, string> };
  if (shared[REGISTRY]) return shared[REGISTRY];
  const live = (shared[REGISTRY] = new Map<WorkerType, string>());
  const threads = createRequire(import.meta.url)('node:worker_threads') as typeof import('node:worker_threads');
  const Original = threads.Worker;
  class TrackedWorker extends Original {
    constructor(...args: ConstructorParameters<typeof Original>) {
      super(...args);
      live.set(this, (globalThis as { [CURRENT]?: string })[CURRENT] ?? '(unknown)');
      this.once('exit', () => live.delete(this));
    }
  }
  threads.Worker = TrackedWorker;
  syncBuiltinESMExports();
  return live;
}

interface TimerOrigin {
  kind: 'setTimeout' | 'setInterval';
  ms: number;
  test: string;
  /** Only with LEAK_CHECK_STACKS=1: a stack per timer is too dear to take always. */
  stack?: string;
}

/** The live ref'd timers, with destroyed and unref'd ones dropped (an unref'd timer keeps nothing alive). */
function pruneTimers(): Map<NodeJS.Timeout, TimerOrigin> {
  for (const timer of liveTimers.keys()) {
    if ((timer as unknown as { _destroyed?: boolean })._destroyed || !timer.hasRef()) liveTimers.delete(timer);
  }
  return liveTimers;
}

/**
 * Wrap the global setTimeout/setInterval (and node:timers' exports) to know
 * each timer the code under test starts. process.getActiveResourcesInfo()
 * counts timers but cannot tell the runner's own from the file's, so a count
 * was not reliable. The runner keeps its own references to the originals.
 */
function trackTimers(): Map<NodeJS.Timeout, TimerOrigin> {
  const shared = globalThis as { [TIMERS]?: Map<NodeJS.Timeout, TimerOrigin> };
  if (shared[TIMERS]) return shared[TIMERS];
  const live = (shared[TIMERS] = new Map<NodeJS.Timeout, TimerOrigin>());
  const stacks = process.env.LEAK_CHECK_STACKS === '1';
  const wrap = <F extends (...args: any[]) => NodeJS.Timeout>(original: F, kind: TimerOrigin['kind']): F =>
    function (this: unknown, ...args: Parameters<F>) {
      const timer = original.apply(this, args);
      const origin: TimerOrigin = { kind, ms: Number(args[1] ?? 0), test: (globalThis as { [CURRENT]?: string })[CURRENT] ?? '(unknown)' };
      if (stacks) origin.stack = new Error().stack?.split('\n').slice(2, 8).join('\n');
      live.set(timer, origin);
      if (live.size > 20_000) pruneTimers();
      return timer;
    } as F;
  const timers = createRequire(import.meta.url)('node:timers') as typeof import('node:timers');
  const setTimeoutTracked = wrap(globalThis.setTimeout as unknown as (...args: any[]) => NodeJS.Timeout, 'setTimeout');
  const setIntervalTracked = wrap(globalThis.setInterval as unknown as (...args: any[]) => NodeJS.Timeout, 'setInterval');
  Object.assign(setTimeoutTracked, { __promisify__: (globalThis.setTimeout as unknown as { __promisify__: unknown }).__promisify__ });
  globalThis.setTimeout = setTimeoutTracked as unknown as typeof globalThis.setTimeout;
  globalThis.setInterval = setIntervalTracked as unknown as typeof globalThis.setInterval;
  timers.setTimeout = globalThis.setTimeout;
  timers.setInterval = globalThis.setInterval;
  syncBuiltinESMExports();
  return live;
}
