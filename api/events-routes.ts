import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { type Request, Router } from 'express';
import { bucketMs } from '../db/count-series.ts';
import { isDatabaseUnavailable } from '../db/database.ts';
import {
  type BucketWidth,
  type EventRepository,
  InvalidCursorError,
  type StoredEvent,
} from '../db/event-repository.ts';
import {
  type AcceptedEvent,
  maxEventBytes,
  type Problem,
  type ReadOptions,
  readEventsBody,
} from '../ingest/contract.ts';
import {
  ceHeaderNames,
  dataContentTypeOf,
  isBinaryMode,
  readBinaryRequest,
  structuredToBinary,
} from '../ingest/http-binding.ts';
import { type OutgoingMessage, toOutgoingMessage } from '../ingest/message.ts';
import { defaultTimePolicy, type TimePolicy, timeWindow } from '../ingest/time-window.ts';
import { parseTimestamp, type Timestamp } from '../ingest/timestamp.ts';
import { AppError, dependencyUnavailable, invalidRequest, notFound } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';
import type { Metrics } from '../platform/metrics.ts';
import { cloudEventAttributes } from '../platform/telemetry/spans.ts';
import { unsupportedMediaType } from './problem.ts';
import { type EventPublisher, PublishError } from './sns-publisher.ts';

export interface EventsRouteDeps {
  log: Logger;
  repository: EventRepository;
  publisher: EventPublisher;
  metrics: Metrics;
  /** Event times accepted (ingest/time-window.ts). Default `defaultTimePolicy`. */
  timePolicy?: TimePolicy;
  /**
   * The store audit's sampling (db/store-audit.ts): the keys of this share of accepted events are
   * recorded, off the response path, for the audit to look up once they should be stored. Default off.
   */
  auditSamples?: {
    rate: number;
    record(keys: { source: string; id: string }[], acceptedAt: Date): Promise<void>;
  };
}

/** Widest /v1/stats answer, in buckets: a month of minutes fits, a year of minutes does not. */
const maxStatsBuckets = 50_000;

/** The media types of structured and batched mode; any other type is binary mode, with `ce-*` headers. */
const structuredTypes = [
  'application/cloudevents+json',
  'application/json',
  'application/cloudevents-batch+json',
];

interface AcceptedRequest {
  events: AcceptedEvent[];
  batch: boolean;
  mode: 'binary' | 'structured' | 'batched';
  warnings: Problem[];
}

/** Refuses what the contract refused: a 413 for size alone, else a 400 naming every attribute. */
function refuse(verdict: { malformed?: string; problems: Problem[]; tooLarge: boolean }): never {
  if (verdict.malformed) throw new AppError(400, 'MALFORMED_JSON', verdict.malformed);
  if (verdict.tooLarge) {
    throw new AppError(413, 'EVENT_TOO_LARGE', `an event is over ${maxEventBytes / 1024} KiB serialized`, {
      errors: verdict.problems,
    });
  }
  // The detail names the first few problems as the validator's do: "request/body/3/time …".
  const shown = verdict.problems.slice(0, 3).map((p) => `request${p.path} ${p.message}`);
  const more = verdict.problems.length - shown.length;
  throw invalidRequest(
    `${shown.join('; ')}${more > 0 ? `; and ${more} more in errors[]` : ''}`,
    verdict.problems,
  );
}

/**
 * The request's events, in whichever content mode of the CloudEvents HTTP binding it uses, through
 * the acceptance contract; or the 400/413/415 that says what to change. Binary mode is exactly a
 * request with `ce-specversion`.
 */
function acceptRequest(req: Request, options: ReadOptions): AcceptedRequest {
  const contentType = req.get('content-type');
  if (isBinaryMode(req.headers)) {
    const verdict = readBinaryRequest(req.headers, req.body as Buffer | string | undefined, options);
    if (!verdict.ok) refuse(verdict);
    return { events: [verdict.event], batch: false, mode: 'binary', warnings: verdict.warnings };
  }
  const stray = ceHeaderNames(req.headers);
  if (stray.length > 0) {
    throw invalidRequest(`${stray.join(', ')} without ce-specversion`, [
      {
        path: `/headers/${stray[0]}`,
        message:
          'ce-* headers make a binary-mode request only with ce-specversion: 1.0; add it, or send the attributes in a structured-mode JSON body',
      },
    ]);
  }
  if (contentType === undefined || !req.is(structuredTypes)) {
    throw new AppError(
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      `${unsupportedMediaType(req, structuredTypes)}; or any content type with the attributes in ce-* headers (binary mode)`,
      {
        headers: { 'Accept-Post': [...structuredTypes, '*/*'].join(', ') },
      },
    );
  }
  const batch = req.is('application/cloudevents-batch+json') !== false;
  const text = typeof req.body === 'string' ? req.body : '';
  if (text.trim() === '') {
    const message =
      'is empty: send a CloudEvent as JSON with at least specversion "1.0", id, source and type';
    throw invalidRequest(`request/body ${message}`, [{ path: '/body', message }]);
  }
  const verdict = readEventsBody(text, { batch, ...options });
  if (!verdict.ok) refuse(verdict);
  return {
    events: verdict.events,
    batch,
    mode: batch ? 'batched' : 'structured',
    warnings: verdict.warnings,
  };
}

/** The content mode a GET of one event answers in: `?mode=`, else binary when Accept prefers the event's own type. */
function readMode(req: Request, dataContentTypeOf: () => string | undefined): 'binary' | 'structured' {
  const asked = queryString(req, 'mode');
  if (asked === 'binary' || asked === 'structured') return asked;
  // Only an Accept header can ask for binary mode: the event's text is parsed for its type then, not on every GET.
  if (req.get('accept') === undefined) return 'structured';
  const dataContentType = dataContentTypeOf();
  if (dataContentType === undefined) return 'structured';
  return req.accepts(['application/cloudevents+json', dataContentType]) === dataContentType
    ? 'binary'
    : 'structured';
}

/** A query time through the contract's own parser: a 400 naming the parameter, never a 500. */
function queryTime(req: Request, name: 'from' | 'to'): Timestamp | undefined {
  const text = queryString(req, name);
  if (text === undefined) return undefined;
  const parsed = parseTimestamp(text);
  if (parsed.ok) return parsed.value;
  // An unencoded + in a query string arrives as a space.
  const reason = /\d \d\d:\d\d$/.test(text)
    ? `has a space where the URL had "+" (a "+" in a query means a space): percent-encode it as %2B`
    : parsed.reason;
  throw invalidRequest(`\`${name}\` ${reason}`, [{ path: `/query/${name}`, message: reason }]);
}

/** `from` and `to` of a query, in order: the same answer on /v1/events and /v1/stats. */
function queryRange(req: Request): { from?: Timestamp; to?: Timestamp } {
  const from = queryTime(req, 'from');
  const to = queryTime(req, 'to');
  if (from && to && !isBefore(from, to)) {
    throw invalidRequest('`from` must be before `to`', [
      { path: '/query/to', message: 'must be after from' },
    ]);
  }
  return { ...(from ? { from } : {}), ...(to ? { to } : {}) };
}

const isBefore = (a: Timestamp, b: Timestamp) =>
  a.epochMs < b.epochMs || (a.epochMs === b.epochMs && a.micros < b.micros);

/** The JSON of one page: each item an event as its producer sent it, metadata alongside. */
function pageJson(page: { items: StoredEvent[]; nextCursor?: string }): string {
  const items = page.items.map((e) => e.text).join(',');
  const metadata = JSON.stringify(page.items.map((e) => e.metadata));
  const cursor = page.nextCursor === undefined ? '' : `,"nextCursor":${JSON.stringify(page.nextCursor)}`;
  return `{"items":[${items}],"metadata":${metadata}${cursor}}`;
}

/** Reads go to PostgreSQL; an outage answers 503 quickly instead of hanging the client. */
async function read<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof InvalidCursorError)
      throw invalidRequest(err.message, [{ path: '/query/cursor', message: err.message }]);
    if (isDatabaseUnavailable(err)) throw dependencyUnavailable('the event store', err, 2);
    throw err;
  }
}

const queryString = (req: Request, name: string): string | undefined => {
  const value = (req.query as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
};

/** POST/GET /v1/events, GET /v1/events/:source/:id and GET /v1/stats. Validation is the OpenAPI validator's job. */
export function eventsRouter(deps: EventsRouteDeps): Router {
  const { log, repository, publisher, metrics, timePolicy = defaultTimePolicy } = deps;
  const router = Router();
  const tracer = trace.getTracer('ingesta-api');
  // The counter's two series, resolved once rather than on every request.
  const published = {
    ok: metrics.eventsPublished.labels({ outcome: 'ok' }),
    failed: metrics.eventsPublished.labels({ outcome: 'failed' }),
  };

  /** Records a sample of accepted keys for the store audit; never delays or fails the request. */
  function sampleForAudit(events: { source: string; id: string }[], acceptedAtMs: number): void {
    const audit = deps.auditSamples;
    if (!audit || audit.rate <= 0) return;
    const keys = events.filter(() => Math.random() < audit.rate).map(({ source, id }) => ({ source, id }));
    if (keys.length === 0) return;
    audit
      .record(keys, new Date(acceptedAtMs))
      .catch((err: unknown) => log.warn({ err }, 'could not record audit samples'));
  }

  async function publishOrUnavailable(messages: OutgoingMessage[]): Promise<void> {
    try {
      await publisher.publish(messages);
    } catch (err) {
      published.failed.inc(messages.length);
      if (err instanceof PublishError && err.refusedEntry !== undefined) {
        // The topic refused an event for its content: resending it would fail the same way.
        const index = messages.indexOf(err.refusedEntry);
        throw invalidRequest(`the event topic refused an event: ${err.message}`, [
          { path: messages.length > 1 ? `/body/${index}` : '/body', message: err.message },
        ]);
      }
      if (err instanceof PublishError) throw dependencyUnavailable('the event topic', err, 1);
      throw err;
    }
  }

  router.post('/v1/events', async (req, res) => {
    const {
      events,
      batch: isBatch,
      mode,
      warnings,
    } = acceptRequest(req, {
      window: timeWindow(timePolicy, Date.now()),
    });
    if (warnings.length > 0) {
      // RFC 7234's Warning header, code 299: accepted, but advised against.
      res.set(
        'Warning',
        warnings.map((w) => `299 ingesta ${JSON.stringify(`${w.path} ${w.message}`)}`).join(', '),
      );
    }
    const acceptedAtMs = Date.now();
    // A producer span per request; its context (and so its sampling decision) rides in every message,
    // so the consumer's process span for each message joins this request's trace.
    const messages = await tracer.startActiveSpan(
      `publish ${publisher.destination}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          'messaging.system': 'aws.sns',
          'messaging.operation.type': 'send',
          'messaging.operation.name': 'publish',
          'messaging.destination.name': publisher.destination,
          ...(events.length === 1
            ? cloudEventAttributes(events[0] as (typeof events)[number])
            : { 'messaging.batch.message_count': events.length }),
        },
      },
      async (span) => {
        try {
          const traceCarrier: Record<string, string> = {};
          propagation.inject(context.active(), traceCarrier);
          const outgoing = events.map((event) => toOutgoingMessage(event, acceptedAtMs, traceCarrier));
          await publishOrUnavailable(outgoing);
          return outgoing;
        } catch (err) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
          throw err;
        } finally {
          span.end();
        }
      },
    );
    published.ok.inc(messages.length);
    sampleForAudit(events, acceptedAtMs);
    // Off at the default level, where asking for req.log would make a logger only to drop the line.
    if (log.isLevelEnabled('debug')) {
      req.log.debug({ eventCount: events.length, batch: isBatch, mode }, 'events accepted');
    }
    res.status(202).json({ accepted: events.map(({ source, id }) => ({ source, id })) });
  });

  router.get('/v1/events', async (req, res) => {
    const limit = Number(req.query.limit ?? 100);
    const { from, to } = queryRange(req);
    const filter = {
      type: queryString(req, 'type'),
      source: queryString(req, 'source'),
      subject: queryString(req, 'subject'),
      from: from?.normalized,
      to: to?.normalized,
    };
    const page = await read(() => repository.list(filter, limit, queryString(req, 'cursor')));
    res.type('application/json').send(pageJson(page));
  });

  router.get('/v1/events/:source/:id', async (req, res) => {
    const { source, id } = req.params as { source: string; id: string };
    const event = await read(() => repository.get(source, id));
    if (!event) throw notFound(`no event with source ${JSON.stringify(source)} and id ${JSON.stringify(id)}`);
    // The event as sent; ingesta's metadata rides in headers, apart from it.
    res.set({
      vary: 'Accept',
      'ingesta-time': event.metadata.time,
      'ingesta-time-defaulted': String(event.metadata.timeDefaulted),
      'ingesta-accepted-at': event.metadata.acceptedAt,
      'ingesta-stored-at': event.metadata.storedAt,
    });
    const binary =
      readMode(req, () => dataContentTypeOf(event.text)) === 'binary'
        ? structuredToBinary(event.text)
        : undefined;
    // setHeader, not res.set: Express would add a charset to the event's own Content-Type.
    if (binary) {
      for (const [name, value] of Object.entries(binary.headers)) res.setHeader(name, value);
      res.status(200).end(binary.body);
    } else res.type('application/cloudevents+json; charset=utf-8').send(event.text);
  });

  router.get('/v1/stats', async (req, res) => {
    const range = queryRange(req);
    const { from, to } = range as Required<typeof range>; // both required by the OpenAPI document
    const bucket = queryString(req, 'bucket') as BucketWidth;
    const spanMs = to.epochMs - from.epochMs;
    if (spanMs / bucketMs(bucket) > maxStatsBuckets) {
      throw invalidRequest(
        `the range spans more than ${maxStatsBuckets} ${bucket} buckets; use a wider bucket`,
        [{ path: '/query/bucket', message: 'too many buckets for this range' }],
      );
    }
    const buckets = await read(() =>
      repository.statsJson({
        from: from.normalized,
        to: to.normalized,
        bucket,
        type: queryString(req, 'type'),
        source: queryString(req, 'source'),
      }),
    );
    // The buckets arrive as JSON chunks: a month of minutes is tens of thousands of buckets, and
    // building an object per bucket only to serialize it, or one buffer of them all, costs more
    // than the query. Written in one go (corked), with their length.
    const chunks = [
      Buffer.from(
        `{"bucket":${JSON.stringify(bucket)},"from":${JSON.stringify(queryString(req, 'from'))},"to":${JSON.stringify(queryString(req, 'to'))},"buckets":`,
      ),
      ...buckets,
      Buffer.from('}'),
    ];
    res.status(200);
    res.set('content-type', 'application/json; charset=utf-8');
    res.set('content-length', String(chunks.reduce((n, c) => n + c.length, 0)));
    res.cork();
    for (const chunk of chunks) res.write(chunk);
    res.end(); // uncorks
  });

  return router;
}
