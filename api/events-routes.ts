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
import { type AcceptedEvent, maxEventBytes, readEventsBody } from '../ingest/contract.ts';
import { type OutgoingMessage, toOutgoingMessage } from '../ingest/message.ts';
import { parseTimestamp, type Timestamp } from '../ingest/timestamp.ts';
import { AppError, dependencyUnavailable, invalidRequest, notFound } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';
import type { Metrics } from '../platform/metrics.ts';
import { type EventPublisher, PublishError } from './sns-publisher.ts';

export interface EventsRouteDeps {
  log: Logger;
  repository: EventRepository;
  publisher: EventPublisher;
  metrics: Metrics;
}

/** Widest /v1/stats answer, in buckets: a month of minutes fits, a year of minutes does not. */
const maxStatsBuckets = 50_000;

/** The request's events through the acceptance contract, or the 400/413 that says what to fix. */
function acceptBody(req: Request, batch: boolean): AcceptedEvent[] {
  const text = typeof req.body === 'string' ? req.body : '';
  if (text.trim() === '') {
    throw invalidRequest('the body is empty: send one CloudEvent, or a batch of them as a JSON array', [
      { path: '/body', message: 'is empty' },
    ]);
  }
  const verdict = readEventsBody(text, { batch });
  if (verdict.ok) return verdict.events;
  if (verdict.malformed) throw new AppError(400, 'MALFORMED_JSON', verdict.malformed);
  if (verdict.tooLarge) {
    throw new AppError(413, 'EVENT_TOO_LARGE', `an event is over ${maxEventBytes / 1024} KiB serialized`, {
      errors: verdict.problems,
    });
  }
  const count = verdict.problems.length;
  throw invalidRequest(
    `${count === 1 ? 'an attribute does' : `${count} attributes do`} not meet the acceptance rules: ${verdict.problems[0]?.path} ${verdict.problems[0]?.message}`,
    verdict.problems,
  );
}

/** A query time through the contract's own parser: a 400 naming the parameter, never a 500. */
function queryTime(req: Request, name: 'from' | 'to'): Timestamp | undefined {
  const text = queryString(req, name);
  if (text === undefined) return undefined;
  const parsed = parseTimestamp(text);
  if (parsed.ok) return parsed.value;
  // An unencoded + in a query string arrives as a space.
  const reason = /\d \d\d:\d\d$/.test(text)
    ? 'has a space where its offset should start: percent-encode a + in a query as %2B'
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
  const { log, repository, publisher, metrics } = deps;
  const router = Router();
  const tracer = trace.getTracer('ingesta-api');
  // The counter's two series, resolved once rather than on every request.
  const published = {
    ok: metrics.eventsPublished.labels({ outcome: 'ok' }),
    failed: metrics.eventsPublished.labels({ outcome: 'failed' }),
  };

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
    const isBatch = req.is('application/cloudevents-batch+json') !== false;
    const events = acceptBody(req, isBatch);
    const acceptedAtMs = Date.now();
    // A producer span per request; its context rides in every message so the consumer joins the trace.
    const messages = await tracer.startActiveSpan(
      `${publisher.destination} publish`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          'messaging.system': 'aws_sns',
          'messaging.operation.type': 'send',
          'messaging.destination.name': publisher.destination,
          'messaging.batch.message_count': events.length,
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
    // Off at the default level, where asking for req.log would make a logger only to drop the line.
    if (log.isLevelEnabled('debug')) {
      req.log.debug({ eventCount: events.length, batch: isBatch }, 'events accepted');
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
    // The event as sent, in structured mode; ingesta's metadata rides in headers, apart from it.
    res.set({
      'ingesta-time': event.metadata.time,
      'ingesta-time-defaulted': String(event.metadata.timeDefaulted),
      'ingesta-accepted-at': event.metadata.acceptedAt,
      'ingesta-stored-at': event.metadata.storedAt,
    });
    res.type('application/cloudevents+json; charset=utf-8').send(event.text);
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
