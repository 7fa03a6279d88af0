import { randomUUID } from 'node:crypto';
import { context, propagation, trace } from '@opentelemetry/api';
import express, { type Express, type Request, type RequestHandler } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import helmet from 'helmet';
import type { EventRepository } from '../db/event-repository.ts';
import { maxEventBytes } from '../ingest/contract.ts';
import { isBinaryMode } from '../ingest/http-binding.ts';
import type { TimePolicy } from '../ingest/time-window.ts';
import { knownRouteMiddleware, routeTemplate } from '../platform/http-route.ts';
import type { Logger } from '../platform/logger.ts';
import { type Metrics, traceExemplar } from '../platform/metrics.ts';
import { type Authenticator, requireAuth } from './auth.ts';
import { type EventsRouteDeps, eventsRouter } from './events-routes.ts';
import { createLoadShedder, failedAuthRateLimit, perPrincipalRateLimit } from './limits.ts';
import { validatorDocument, validatorFormats } from './openapi.ts';
import { problemMiddleware, sendProblem } from './problem.ts';
import { referencePageRouter } from './reference-page.ts';
import { type ReplaysRouteDeps, replaysRouter } from './replays-routes.ts';
import type { EventPublisher } from './sns-publisher.ts';

export interface AppDeps {
  log: Logger;
  metrics: Metrics;
  repository: EventRepository;
  /** Replays (`/v1/replays`); without them the routes answer 404. */
  replays?: ReplaysRouteDeps;
  /** The store audit's sampling of accepted keys (api/events-routes.ts); off when absent. */
  auditSamples?: EventsRouteDeps['auditSamples'];
  publisher: EventPublisher;
  /** The parsed api/openapi.yaml. */
  openApiDocument: Record<string, unknown>;
  /** Validate responses against the spec too (tests turn it on; a violation is a 500). Default false. */
  validateResponses?: boolean;
  /** Event times accepted (ingest/time-window.ts); the config's in production. Default `defaultTimePolicy`. */
  timePolicy?: TimePolicy;
  /** Authentication, limits and load shedding; see platform/config.ts for the defaults in production. */
  security?: SecurityOptions;
}

export interface SecurityOptions {
  /** Verifies bearer tokens; without it /v1 is open (local mode only, enforced by the config). */
  authenticate?: Authenticator;
  /** Default 6000. */
  rateLimitPerMinute?: number;
  /** Failed authentications per client address per minute before 429. Default 60. */
  failedAuthPerMinute?: number;
  /** Proxies in front that set X-Forwarded-For. Default 0. */
  trustProxyHops?: number;
  /** Default 256. */
  maxInFlightRequests?: number;
  /** Default 500. */
  maxEventLoopLagMs?: number;
}

/** Largest batch body; each event in it is still held to the per-event limit. */
export const maxBatchBodyBytes = 5 * 1024 * 1024;

const requestIdPattern = /^[\w.:-]{1,128}$/;

function requestContext(): RequestHandler {
  return (req, res, next) => {
    const incoming = req.get('x-request-id');
    req.id = incoming && requestIdPattern.test(incoming) ? incoming : randomUUID();
    res.setHeader('x-request-id', req.id);
    next();
  };
}

/** Where a request keeps its logger once `req.log` has made it. */
const requestLogger = Symbol('requestLogger');

/**
 * `req.log` of this app's requests, made on first use: at the default level most requests log
 * nothing, and a pino child per request costs about as much as the rest of the request context.
 * It binds the request id and, once authenticated, the principal; bindings are taken when it is
 * made, so nothing should log through it between the request context and authentication.
 */
function lazyRequestLogger(app: Express, log: Logger): void {
  type WithLogger = Request & { [requestLogger]?: Logger };
  Object.defineProperty(app.request, 'log', {
    configurable: true,
    get(this: WithLogger): Logger {
      this[requestLogger] ??= log.child(
        this.principal ? { requestId: this.id, principal: this.principal.subject } : { requestId: this.id },
      );
      return this[requestLogger];
    },
    set(this: WithLogger, logger: Logger) {
      this[requestLogger] = logger;
    },
  });
}

type HeaderStep = [name: string, value: string | number | readonly string[] | undefined];

/**
 * helmet's headers, set in one step. With its defaults helmet writes the same headers on every
 * response, so its middleware runs once here against a recorder and each request replays what it
 * did, instead of walking helmet's chain of a dozen middlewares per request.
 */
function securityHeaders(): RequestHandler {
  const steps: HeaderStep[] = [];
  const recorder = {
    setHeader: (name: string, value: HeaderStep[1]) => steps.push([name, value]),
    removeHeader: (name: string) => steps.push([name, undefined]),
  };
  let finished = false;
  helmet()({} as never, recorder as never, (err?: unknown) => {
    if (err) throw err;
    finished = true;
  });
  // A per-request directive (a CSP nonce, say) would need helmet itself on every request.
  if (!finished) throw new Error('helmet did not finish synchronously: its headers cannot be precomputed');
  return (_req, res, next) => {
    for (const [name, value] of steps) {
      if (value === undefined) res.removeHeader(name);
      else res.setHeader(name, value);
    }
    next();
  };
}

/**
 * Answers every request with its W3C `traceparent` (trace id, server span id, sampled flag), so a
 * producer can find the trace of the events it sent. Nothing when tracing is off.
 */
function traceResponseHeader(): RequestHandler {
  return (_req, res, next) => {
    const carrier: Record<string, string> = {};
    propagation.inject(context.active(), carrier);
    if (carrier.traceparent) res.setHeader('traceparent', carrier.traceparent);
    next();
  };
}

/** RED metrics labelled by the route *template*, never the raw path: label values stay bounded. */
function httpMetrics(metrics: Metrics): RequestHandler {
  // One child per series the histogram has, so labels are resolved once per series, not per request.
  const series = new Map<string, ReturnType<Metrics['httpDuration']['labels']>>();
  const seriesOf = (method: string, route: string, statusCode: string) => {
    const key = `${method} ${route} ${statusCode}`;
    let child = series.get(key);
    if (!child) {
      child = metrics.httpDuration.labels({ method, route, status_code: statusCode });
      series.set(key, child);
    }
    return child;
  };
  return (req, res, next) => {
    const startMs = performance.now();
    // The server span's context, while it is the active one: a sampled request leaves an exemplar.
    const exemplar = traceExemplar(trace.getActiveSpan()?.spanContext());
    res.once('finish', () => {
      const seconds = (performance.now() - startMs) / 1000;
      const route = routeTemplate(req) ?? 'unmatched';
      if (exemplar === undefined) seriesOf(req.method, route, String(res.statusCode)).observe(seconds);
      else
        metrics.httpDuration.observe({
          labels: { method: req.method, route, status_code: String(res.statusCode) },
          value: seconds,
          // prom-client types exemplar labels as the metric's own label names; any names are valid.
          exemplarLabels: exemplar as never,
        });
    });
    next();
  };
}

/** Builds the HTTP API. No I/O happens here: everything it talks to arrives in `deps`. */
export function createApp(deps: AppDeps): Express {
  const { log, metrics, openApiDocument } = deps;
  const security = deps.security ?? {};
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Exactly the proxies in front (API Gateway), so req.ip cannot be spoofed past them.
  app.set('trust proxy', security.trustProxyHops ?? 0);
  lazyRequestLogger(app, log);
  // Before anything that can refuse a request, so its metrics and span keep the route it asked for.
  app.use(knownRouteMiddleware(Object.keys((openApiDocument.paths ?? {}) as Record<string, unknown>)));
  app.use(traceResponseHeader());
  app.use(requestContext());
  app.use(httpMetrics(metrics));
  app.use(securityHeaders());

  const specJson = JSON.stringify(openApiDocument);
  app.get('/openapi.json', (_req, res) => {
    res.type('application/json').send(specJson);
  });
  app.use(referencePageRouter());

  // Authenticate before the body is even parsed, failures limited per client address; then limit per principal.
  if (security.authenticate) {
    app.use('/v1', failedAuthRateLimit(security.failedAuthPerMinute ?? 60));
    app.use('/v1', requireAuth(security.authenticate));
  }
  app.use('/v1', perPrincipalRateLimit(security.rateLimitPerMinute ?? 6_000));
  // Event bodies arrive as text: the acceptance contract keeps each event's text as sent (ingest/).
  app.use(
    '/v1/events',
    express.text({ type: ['application/json', 'application/cloudevents+json'], limit: maxEventBytes }),
    express.text({ type: 'application/cloudevents-batch+json', limit: maxBatchBodyBytes }),
    // Binary mode: any other content type, the body as the event's data, bytes until the contract reads it.
    express.raw({ type: (req) => isBinaryMode(req.headers), limit: maxEventBytes }),
  );
  app.use('/v1/replays', express.json({ limit: '64kb' }));
  // Counted once the body has arrived: a client trickling bodies holds its own sockets, not the
  // capacity every other client shares (api/http-server.ts cuts slow bodies off).
  app.use(
    '/v1',
    createLoadShedder({
      maxInFlight: security.maxInFlightRequests ?? 256,
      maxLagMs: security.maxEventLoopLagMs ?? 500,
    }).middleware,
  );
  app.use(
    OpenApiValidator.middleware({
      apiSpec: validatorDocument(openApiDocument) as never,
      formats: validatorFormats,
      validateRequests: { allErrors: true },
      validateResponses: deps.validateResponses ? { allErrors: true } : false,
      validateSecurity: false,
      validateApiSpec: true,
      ignorePaths: /^\/(?:openapi\.json|docs(?:\/.*)?)$/,
    }),
  );
  app.use(eventsRouter(deps));
  if (deps.replays) app.use(replaysRouter(deps.replays));
  app.use((req, res) => {
    sendProblem(res, { status: 404, code: 'NOT_FOUND', detail: `no route for ${req.method} ${req.path}` });
  });
  app.use(problemMiddleware(log, { openApiDocument, maxBatchBodyBytes }));
  return app;
}
