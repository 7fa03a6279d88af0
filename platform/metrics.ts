import { type SpanContext, TraceFlags } from '@opentelemetry/api';
import {
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type OpenMetricsContentType,
  Registry,
} from 'prom-client';
import { buildInfo } from './config.ts';

/**
 * The exemplar labels of an observation made for a sampled span (its trace and span id, as Grafana
 * and Prometheus name them); undefined otherwise, since an unsampled trace cannot be looked up.
 */
export function traceExemplar(
  span: SpanContext | undefined,
): { trace_id: string; span_id: string } | undefined {
  if (!span || (span.traceFlags & TraceFlags.SAMPLED) === 0) return undefined;
  return { trace_id: span.traceId, span_id: span.spanId };
}

/**
 * Latency buckets: 0.2 s and 0.3 s are the latency SLO thresholds, so the SLIs are exact; 0.02 s is
 * the read goal of /v1/stats over a month of minutes (docs/performance.md).
 */
export const httpDurationBucketsSec = [0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5, 5, 10];
/** Freshness buckets: 5 s is the freshness SLO threshold. */
export const freshnessBucketsSec = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300];

/**
 * The metrics of one process, on its own registry. Each process exposes only its own series, and
 * every known label combination starts at 0 so dashboards and alerts see a series from the start.
 */
export function createMetrics(
  registry: Registry,
  role: 'api' | 'consumer',
  build: { version: string; revision: string } = buildInfo(),
) {
  // prom-client keeps exemplars only on an OpenMetrics registry; /metrics still serves both formats
  // (platform/exposition.ts).
  (registry as unknown as Registry<OpenMetricsContentType>).setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
  const both = [registry];
  const api = role === 'api' ? both : [];
  const consumer = role === 'consumer' ? both : [];
  const metrics = {
    registry,
    httpDuration: new Histogram({
      name: 'http_server_request_duration_seconds',
      help: 'Duration of HTTP requests at the server, by route template.',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: httpDurationBucketsSec,
      // Exemplars (a sampled request's trace id per bucket) link a slow bucket to a trace. With them
      // on, prom-client's observe() takes only an object: { labels, value, exemplarLabels }.
      enableExemplars: true,
      registers: api,
    }),
    eventsPublished: new Counter({
      name: 'ingesta_events_published_total',
      help: 'Events offered to SNS, by outcome.',
      labelNames: ['outcome'] as const,
      registers: api,
    }),
    eventsStored: new Counter({
      name: 'ingesta_events_stored_total',
      help: 'Messages handled by the consumer: inserted, duplicate (already stored) or rejected (to the DLQ).',
      labelNames: ['outcome'] as const,
      registers: consumer,
    }),
    batchDuration: new Histogram({
      name: 'ingesta_consumer_batch_duration_seconds',
      help: 'Time to handle one received batch, from receipt to COMMIT.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: consumer,
    }),
    freshness: new Histogram({
      name: 'ingesta_event_freshness_seconds',
      help: 'Stored time minus accepted time of each inserted event (the pipeline freshness SLI).',
      buckets: freshnessBucketsSec,
      enableExemplars: true,
      registers: consumer,
    }),
    lastPoll: new Gauge({
      name: 'ingesta_consumer_last_poll_timestamp_seconds',
      help: 'Unix time of the last completed SQS poll.',
      registers: consumer,
    }),
    queueMessages: new Gauge({
      name: 'ingesta_queue_messages',
      help: 'Approximate messages in the queue, sampled from SQS.',
      labelNames: ['queue', 'state'] as const,
      registers: consumer,
    }),
    queueOldestAge: new Gauge({
      name: 'ingesta_queue_oldest_message_age_seconds',
      help: 'Estimated age of the oldest message in the queue, from what the consumer receives and SQS depth.',
      labelNames: ['queue'] as const,
      registers: consumer,
    }),
    buildInfo: new Gauge({
      name: 'ingesta_build_info',
      help: 'Always 1; its labels say which release, revision and Node.js version the process runs, and its role.',
      labelNames: ['version', 'revision', 'node_version', 'role'] as const,
      registers: both,
    }),
    dbPool: new Gauge({
      name: 'ingesta_db_pool_connections',
      help: 'Database pool connections by state; waiting > 0 means the pool is saturated.',
      labelNames: ['state'] as const,
      registers: both,
    }),
  };
  metrics.buildInfo.set(
    { version: build.version, revision: build.revision, node_version: process.versions.node, role },
    1,
  );
  if (role === 'api') for (const outcome of ['ok', 'failed']) metrics.eventsPublished.inc({ outcome }, 0);
  if (role === 'consumer') {
    for (const outcome of ['inserted', 'duplicate', 'rejected']) metrics.eventsStored.inc({ outcome }, 0);
    for (const queue of ['main', 'dlq']) {
      for (const state of ['visible', 'in_flight']) metrics.queueMessages.set({ queue, state }, 0);
    }
    for (const queue of ['main', 'dlq']) metrics.queueOldestAge.set({ queue }, 0);
  }
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;
