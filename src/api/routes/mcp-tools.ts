/**
 * Drover's operations as MCP tools (served at `/mcp`, mcp.ts). Each tool is
 * one HTTP route: its input schema is that route's own schema object
 * (imported, not copied, so the two cannot drift), and a call is made as
 * that route's request with the caller's key, so validation, scopes,
 * problem types, auditing and backpressure are the route's.
 */
import { nameParam } from './control.js';
import { eventSchema, jobSchema } from './intake.js';
import { idParam as interruptIdParam, listQuery as interruptListQuery, resumeBody } from './interrupts.js';
import { idParam, listQuery } from './jobs.js';
import { ROUTES, type RouteName } from './scopes.js';

/** The request a tool call stands for. */
export interface ToolRequest {
  method: 'GET' | 'POST';
  url: string;
  body?: unknown;
}

export interface DroverTool {
  name: string;
  description: string;
  /** The route's JSON schema (an object schema, as MCP requires). */
  inputSchema: { type: 'object'; [key: string]: unknown };
  route: RouteName;
  request(args: Record<string, unknown>): ToolRequest;
}

const noInput = { type: 'object', additionalProperties: false, properties: {} } as const;

/** A resume is a path id and a body; MCP takes one object, so the tool's schema is the two route schemas' members together. */
const resumeInput = {
  type: 'object',
  additionalProperties: false,
  required: [...interruptIdParam.required, ...resumeBody.required],
  properties: { ...interruptIdParam.properties, ...resumeBody.properties },
} as const;

/** Query values as the route reads them (strings), whatever JSON type the caller sent. */
function query(args: Record<string, unknown>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(args)) if (value !== undefined && value !== null) params.set(key, String(value));
  const text = params.toString();
  return text ? `?${text}` : '';
}

const segment = (value: unknown) => encodeURIComponent(String(value ?? ''));

const tool = (name: string, route: RouteName, inputSchema: object, request: DroverTool['request'], note: string): DroverTool => ({
  name,
  route,
  inputSchema: inputSchema as DroverTool['inputSchema'],
  request,
  description: `${ROUTES[route].summary} (${route}; scope: ${ROUTES[route].scope.join(' or ')}). ${note}`.trim(),
});

/**
 * Every tool, in the order `tools/list` shows them.
 *
 * @example
 * MCP_TOOLS.find((t) => t.name === 'send_event')!.request({ name: 'order.created', data: {} });
 * // { method: 'POST', url: '/v1/events', body: { name: 'order.created', data: {} } }
 */
export const MCP_TOOLS: readonly DroverTool[] = [
  tool('send_event', 'POST /v1/events', eventSchema, (args) => ({ method: 'POST', url: '/v1/events', body: args }), 'The answer lists the jobs the event fanned out to; `id` makes a retry safe (sent twice, accepted once).'),
  tool('enqueue_job', 'POST /v1/jobs', jobSchema, (args) => ({ method: 'POST', url: '/v1/jobs', body: args }), '`idempotencyKey` makes a retry safe.'),
  tool('get_job', 'GET /v1/jobs/:id', idParam, (args) => ({ method: 'GET', url: `/v1/jobs/${segment(args.id)}` }), 'State, attempts with their errors, and the result.'),
  tool('list_jobs', 'GET /v1/jobs', listQuery, (args) => ({ method: 'GET', url: `/v1/jobs${query(args)}` }), 'Filter by state, handler or queue; pass the answer\'s `nextCursor` as `cursor` for the next page.'),
  tool('list_handlers', 'GET /v1/handlers', noInput, () => ({ method: 'GET', url: '/v1/handlers' }), 'Each with its circuit breaker and quarantine state.'),
  tool('list_interrupts', 'GET /v1/interrupts', interruptListQuery, (args) => ({ method: 'GET', url: `/v1/interrupts${query(args)}` }), 'Questions durable jobs are waiting on; filter by state (default all) or handler.'),
  tool('get_interrupt', 'GET /v1/interrupts/:id', interruptIdParam, (args) => ({ method: 'GET', url: `/v1/interrupts/${segment(args.id)}` }), 'Its prompt and the JSON Schema its input must satisfy.'),
  tool('resume_interrupt', 'POST /v1/interrupts/:id/resume', resumeInput, ({ id, ...body }) => ({ method: 'POST', url: `/v1/interrupts/${segment(id)}/resume`, body }), 'Answer with `input` valid against the interrupt\'s schema (422 naming the field otherwise; 409 if it was already answered). Audited.'),
  tool('reset_handler', 'POST /v1/handlers/:name/reset', nameParam, (args) => ({ method: 'POST', url: `/v1/handlers/${segment(args.name)}/reset` }), 'Admin only. Recorded in the audit trail.'),
];
