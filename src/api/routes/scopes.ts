/**
 * Every route of the HTTP API, the scopes that may call it and a one-line
 * summary: the one table that route declarations, the OpenAPI document, the
 * auth-matrix test and docs/api.md all agree with (tests keep them in step).
 * `admin` satisfies every scope; `public` routes need no key.
 */
import type { RouteScope } from '../auth.js';

export interface RouteInfo {
  scope: readonly RouteScope[];
  summary: string;
}

const PUBLIC = ['public'] as const;
const READ = ['read', 'produce'] as const;
/** Keys with a tool to call: read and produce, and resume (the interrupt tools). */
const MCP = ['read', 'produce', 'resume'] as const;

export const ROUTES = {
  'GET /health/live': { scope: PUBLIC, summary: 'Liveness: the process answers' },
  'GET /health/ready': { scope: PUBLIC, summary: 'Readiness: the store answers and the node is not draining' },
  'GET /v1/openapi.json': { scope: PUBLIC, summary: 'This API as an OpenAPI 3 document' },

  'POST /v1/events': { scope: ['produce'], summary: 'Send an event (or a batch of up to 1,000)' },
  'POST /v1/jobs': { scope: ['produce'], summary: 'Enqueue a job for a handler (or a batch of up to 1,000)' },
  'GET /v1/jobs': { scope: READ, summary: 'List jobs, newest first, with keyset pagination' },
  'GET /v1/jobs/:id': { scope: READ, summary: 'A job with its attempts' },
  'GET /v1/events/:id': { scope: READ, summary: 'An event with the jobs it created' },
  'GET /v1/stream': { scope: READ, summary: 'Server-Sent Events of job, handler and queue state changes' },
  'POST /v1/jobs/:id/cancel': { scope: ['admin'], summary: 'Cancel an unfinished job' },
  'POST /v1/jobs/:id/retry': { scope: ['admin'], summary: 'Run a dead or cancelled job again' },
  'POST /v1/jobs/bulk': { scope: ['admin'], summary: 'Retry or cancel every job a filter matches, as a run the node tracks' },
  'GET /v1/jobs/bulk': { scope: READ, summary: 'The last 50 bulk runs with their progress' },
  'GET /v1/jobs/bulk/:id': { scope: READ, summary: 'A bulk run: its filter, action and progress' },

  'GET /v1/status': { scope: ['read'], summary: 'Node status' },
  'GET /v1/status/rollout': { scope: ['read'], summary: 'The node\'s release channel and its feature gates' },
  'GET /v1/gates': { scope: ['read'], summary: 'Feature gates: value, where it comes from (built-in, config, override)' },
  'POST /v1/gates/:name': { scope: ['admin'], summary: 'Override a feature gate on every node sharing the store, or remove the override (enabled: null); audited' },
  'GET /v1/handlers': { scope: ['read'], summary: 'Handlers with their policy, running count and pause state' },
  'GET /v1/queues': { scope: ['read'], summary: 'Queues with depth by state, oldest queued age and pause state' },
  'POST /v1/handlers/:name/pause': { scope: ['admin'], summary: 'Stop leasing jobs of a handler' },
  'POST /v1/handlers/:name/resume': { scope: ['admin'], summary: 'Lease jobs of a paused handler again' },
  'POST /v1/handlers/:name/reset': { scope: ['admin'], summary: 'Clear a handler\'s pause, quarantine and circuit breaker' },
  'POST /v1/queues/:name/pause': { scope: ['admin'], summary: 'Stop leasing jobs from a queue' },
  'POST /v1/queues/:name/resume': { scope: ['admin'], summary: 'Lease jobs from a paused queue again' },

  'POST /v1/workers/lease': { scope: ['work'], summary: 'Remote worker: lease jobs, long-polling up to waitMs' },
  'POST /v1/workers/heartbeat': { scope: ['work'], summary: 'Remote worker: extend a lease' },
  'POST /v1/workers/complete': { scope: ['work'], summary: 'Remote worker: record success' },
  'POST /v1/workers/fail': { scope: ['work'], summary: 'Remote worker: record a failed attempt' },
  'POST /v1/workers/release': { scope: ['work'], summary: 'Remote worker: hand a job back without spending the attempt' },
  'POST /v1/workers/steps': { scope: ['work'], summary: 'Remote worker: the durable steps a leased job has stored' },
  'POST /v1/workers/step': { scope: ['work'], summary: 'Remote worker: store a finished durable step' },
  'POST /v1/workers/suspend': { scope: ['work'], summary: 'Remote worker: suspend a leased job on a sleep, an event or an interrupt' },

  // `resume` only (admin also may): an approval tool answers interrupts; it neither produces work nor administers.
  'GET /v1/interrupts': { scope: ['resume'], summary: 'List interrupts of durable jobs (pending, resumed, timed out, cancelled), newest first, with a cursor' },
  'GET /v1/interrupts/:id': { scope: ['resume'], summary: 'An interrupt: its prompt, the JSON Schema its input must satisfy, its state' },
  'POST /v1/interrupts/:id/resume': { scope: ['resume'], summary: 'Resume a pending interrupt with input valid against its schema; its job is queued again (audited)' },
  // The web console's sign-in: an API key for a session cookie (src/api/session.ts).
  'POST /v1/session': { scope: PUBLIC, summary: 'Sign in to the console: exchange an API key for a session cookie' },
  // `resume` too: a person who only answers interrupts signs in to the console's inbox.
  'GET /v1/session': { scope: ['read', 'produce', 'resume'], summary: 'The calling key and, with a session cookie, its CSRF token and expiry' },
  'DELETE /v1/session': { scope: ['read', 'produce', 'resume'], summary: 'Sign out: end the console session and clear its cookie' },

  'GET /v1/keys': { scope: ['admin'], summary: 'List API keys (never their secrets)' },
  'POST /v1/keys': { scope: ['admin'], summary: 'Create an API key; the secret is in this response only' },
  'POST /v1/keys/:id/revoke': { scope: ['admin'], summary: 'Revoke an API key' },

  'GET /v1/admin/log-level': { scope: ['admin'], summary: 'The node\'s current log level' },
  'POST /v1/admin/log-level': { scope: ['admin'], summary: 'Change the node\'s log level at runtime (recorded as an operator action)' },

  // Admin only: the trail says who holds which key and what each did, and its before/after values
  // may carry configuration; a `read` key is handed to dashboards. Ship the export files to a SIEM instead.
  'GET /v1/audit': { scope: ['admin'], summary: 'The audit trail of operator actions, newest first, with a cursor' },

  // Admin only: a snapshot is the whole store (payloads, key hashes, webhook secrets).
  'POST /v1/snapshots': { scope: ['admin'], summary: 'Take a consistent snapshot of the store now; answers its signed manifest (chunk hashes)' },
  'GET /v1/snapshots': { scope: ['admin'], summary: 'Snapshots this node keeps, with their expiry' },
  'GET /v1/snapshots/:id': { scope: ['admin'], summary: 'A snapshot\'s signed manifest' },
  'GET /v1/snapshots/:id/chunks/:n': { scope: ['admin'], summary: 'One chunk of a snapshot (octet-stream; its SHA-256 in X-Drover-Chunk-Sha256)' },
  'DELETE /v1/snapshots/:id': { scope: ['admin'], summary: 'Delete a snapshot before it expires' },

  'POST /v1/triggers': { scope: ['admin'], summary: 'Create a runtime trigger with a built-in action (webhook, http, telegram, mcp); a webhook\'s secret is in this response only' },
  'GET /v1/triggers': { scope: ['admin'], summary: 'List runtime triggers (never their credentials) and the breakers of their targets' },
  'DELETE /v1/triggers/:id': { scope: ['admin'], summary: 'Delete a runtime trigger' },
  'POST /v1/triggers/:id/rotate-secret': { scope: ['admin'], summary: 'Add a second signing secret to a trigger (both sign until one is retired); the new secret is in this response only' },
  'POST /v1/triggers/:id/retire-secret': { scope: ['admin'], summary: 'Stop signing a trigger\'s deliveries with a secret (default: the oldest)' },

  // Drover as an MCP server: any key that may read or produce connects; each tool call is then
  // made as its route's request with that key, so the route's own scope decides (a read key's send_event gets 403).
  'POST /mcp': { scope: MCP, summary: 'MCP server (Streamable HTTP, stateless): Drover\'s operations as tools, each under its route\'s scope' },
  'GET /mcp': { scope: MCP, summary: 'MCP: no server-initiated stream (stateless server); answers 405' },
  'DELETE /mcp': { scope: MCP, summary: 'MCP: no session to end (stateless server); answers 405' },
} as const satisfies Record<string, RouteInfo>;

export type RouteName = keyof typeof ROUTES;

/**
 * The `config` a route declares, from the table.
 * @example
 * app.get('/v1/stream', { config: routeConfig('GET /v1/stream') }, handler);
 */
export function routeConfig(route: RouteName): { scope: RouteScope[] } {
  return { scope: [...ROUTES[route].scope] };
}

/** The table entry for a registered route, if any (`method` upper-case, `url` as declared). */
export function routeInfo(method: string, url: string): RouteInfo | undefined {
  return (ROUTES as Record<string, RouteInfo>)[`${method} ${url}`];
}
