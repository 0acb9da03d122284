/**
 * A server span per API request, `<METHOD> <route template>`, child of the
 * caller's `traceparent` header. Only registered when tracing is on.
 *
 * The span starts in `onRequest` (so it times auth and body parsing) and is
 * made the active context in `preHandler`, right before the route handler:
 * body parsing runs in the socket's async context, so activating it earlier
 * would be lost for requests with a body. Inside the handler, an ingest's
 * producer span and store spans become its children.
 */
import { context, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { routeLabel } from './http-metrics.js';
import type { Tracing } from './tracing.js';

/**
 * @example
 * registerRequestTracing(app, runtime.tracing); // first hook, before auth
 */
export function registerRequestTracing(app: FastifyInstance, tracing: Tracing): void {
  if (!tracing.enabled) return;
  const spans = new WeakMap<FastifyRequest, { span: Span; ctx: Context }>();

  app.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, done: () => void) => {
    const route = routeLabel(request);
    const parent = tracing.extract(request.headers);
    const span = tracing.tracer.startSpan(
      `${request.method} ${route}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': request.method,
          'http.route': route,
          'url.path': request.url.split('?')[0] ?? request.url,
          'drover.request_id': String(request.id),
        },
      },
      parent,
    );
    spans.set(request, { span, ctx: trace.setSpan(parent, span) });
    done();
  });

  app.addHook('preHandler', (request: FastifyRequest, _reply: FastifyReply, done: () => void) => {
    const entry = spans.get(request);
    if (entry) context.with(entry.ctx, done);
    else done();
  });

  const end = (request: FastifyRequest, status: number | null) => {
    const entry = spans.get(request);
    if (!entry) return;
    spans.delete(request);
    if (status !== null) {
      entry.span.setAttribute('http.response.status_code', status);
      if (status >= 500) entry.span.setStatus({ code: SpanStatusCode.ERROR });
    } else {
      entry.span.setAttribute('drover.client_aborted', true);
    }
    entry.span.end();
  };
  app.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    end(request, reply.statusCode);
    done();
  });
  app.addHook('onRequestAbort', (request: FastifyRequest, done: () => void) => {
    end(request, null);
    done();
  });
}
