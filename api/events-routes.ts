import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { type Request, Router } from 'express';
import { bucketMs } from '../db/count-series.ts';
import { isDatabaseUnavailable } from '../db/database.ts';
import { type BucketWidth, type EventRepository, InvalidCursorError } from '../db/event-repository.ts';
import { type CloudEvent, maxEventBytes } from '../platform/cloud-event.ts';
import { AppError, dependencyUnavailable, invalidRequest, notFound } from '../platform/errors.ts';
import { type OutgoingMessage, toOutgoingMessage } from '../platform/event-message.ts';
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

/** A JSON `\u0000` escape not itself escaped: PostgreSQL text and jsonb cannot store NUL. */
const nulEscape = /(?:^|[^\\])(?:\\\\)*\\u0000/;

/**
 * SNS takes 256 KiB per message with attributes: each event is held to 200 KiB serialized. NUL
 * characters are refused here, where the client can be told, rather than failing in storage.
 */
function checkSerialized(messages: OutgoingMessage[], isBatch: boolean): void {
  const withNul = messages.flatMap((m, index) =>
    nulEscape.test(m.body)
      ? [{ path: isBatch ? `/body/${index}` : '/body', message: 'contains a NUL character' }]
      : [],
  );
  if (withNul.length > 0) throw invalidRequest('events must not contain NUL characters', withNul);
  const oversized = messages.flatMap((m, index) =>
    Buffer.byteLength(m.body) > maxEventBytes
      ? [
          {
            path: isBatch ? `/body/${index}` : '/body',
            message: `serialized event over ${maxEventBytes} bytes`,
          },
        ]
      : [],
  );
  if (oversized.length > 0) {
    throw new AppError(413, 'EVENT_TOO_LARGE', `an event is over ${maxEventBytes / 1024} KiB`, {
      errors: oversized,
    });
  }
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
      if (err instanceof PublishError) throw dependencyUnavailable('the event topic', err, 1);
      throw err;
    }
  }

  router.post('/v1/events', async (req, res) => {
    const isBatch = req.is('application/cloudevents-batch+json') !== false;
    const events = (isBatch ? req.body : [req.body]) as CloudEvent[];
    const acceptedAtMs = Date.now();
    const receiptTime = new Date(acceptedAtMs).toISOString();
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
          const outgoing = events.map((event) =>
            toOutgoingMessage({ ...event, time: event.time ?? receiptTime }, acceptedAtMs, traceCarrier),
          );
          checkSerialized(outgoing, isBatch);
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
    const filter = {
      type: queryString(req, 'type'),
      source: queryString(req, 'source'),
      subject: queryString(req, 'subject'),
      from: queryString(req, 'from'),
      to: queryString(req, 'to'),
    };
    const page = await read(() => repository.list(filter, limit, queryString(req, 'cursor')));
    res.json(page);
  });

  router.get('/v1/events/:source/:id', async (req, res) => {
    const { source, id } = req.params as { source: string; id: string };
    const event = await read(() => repository.get(source, id));
    if (!event) throw notFound(`no event with source ${JSON.stringify(source)} and id ${JSON.stringify(id)}`);
    res.json(event);
  });

  router.get('/v1/stats', async (req, res) => {
    const from = queryString(req, 'from') as string;
    const to = queryString(req, 'to') as string;
    const bucket = queryString(req, 'bucket') as BucketWidth;
    const spanMs = Date.parse(to) - Date.parse(from);
    if (!(spanMs > 0)) {
      throw invalidRequest('`from` must be before `to`', [
        { path: '/query/to', message: 'must be after from' },
      ]);
    }
    if (spanMs / bucketMs(bucket) > maxStatsBuckets) {
      throw invalidRequest(
        `the range spans more than ${maxStatsBuckets} ${bucket} buckets; use a wider bucket`,
        [{ path: '/query/bucket', message: 'too many buckets for this range' }],
      );
    }
    const buckets = await read(() =>
      repository.statsJson({
        from,
        to,
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
        `{"bucket":${JSON.stringify(bucket)},"from":${JSON.stringify(from)},"to":${JSON.stringify(to)},"buckets":`,
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
