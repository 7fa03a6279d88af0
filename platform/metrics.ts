import { Counter, collectDefaultMetrics, Gauge, Histogram, type Registry } from 'prom-client';

/** Latency buckets: 0.2 s and 0.3 s are the latency SLO thresholds, so the SLIs are exact. */
export const httpDurationBucketsSec = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5, 5, 10];
/** Freshness buckets: 5 s is the freshness SLO threshold. */
export const freshnessBucketsSec = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300];

/** Metrics shared by both processes; each process registers only what it uses on its own registry. */
export function createMetrics(registry: Registry) {
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
  const registers = [registry];
  return {
    registry,
    httpDuration: new Histogram({
      name: 'http_server_request_duration_seconds',
      help: 'Duration of HTTP requests at the server, by route template.',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: httpDurationBucketsSec,
      registers,
    }),
    eventsPublished: new Counter({
      name: 'ingesta_events_published_total',
      help: 'Events offered to SNS, by outcome.',
      labelNames: ['outcome'] as const,
      registers,
    }),
    eventsStored: new Counter({
      name: 'ingesta_events_stored_total',
      help: 'Messages handled by the consumer: inserted, duplicate (already stored) or rejected (to the DLQ).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    batchDuration: new Histogram({
      name: 'ingesta_consumer_batch_duration_seconds',
      help: 'Time to handle one received batch, from receipt to COMMIT.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    freshness: new Histogram({
      name: 'ingesta_event_freshness_seconds',
      help: 'Stored time minus accepted time of each inserted event (the pipeline freshness SLI).',
      buckets: freshnessBucketsSec,
      registers,
    }),
    lastPoll: new Gauge({
      name: 'ingesta_consumer_last_poll_timestamp_seconds',
      help: 'Unix time of the last completed SQS poll.',
      registers,
    }),
    queueMessages: new Gauge({
      name: 'ingesta_queue_messages',
      help: 'Approximate messages in the queue, sampled from SQS.',
      labelNames: ['queue', 'state'] as const,
      registers,
    }),
    queueOldestAge: new Gauge({
      name: 'ingesta_queue_oldest_message_age_seconds',
      help: 'Age of the oldest message in the queue, sampled from SQS.',
      labelNames: ['queue'] as const,
      registers,
    }),
    dbPool: new Gauge({
      name: 'ingesta_db_pool_connections',
      help: 'Database pool connections by state; waiting > 0 means the pool is saturated.',
      labelNames: ['state'] as const,
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
