import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * Metrics of the guards against hostile or unlucky clients and dependencies, all of the API: the
 * token issuer's keys and the number of monthly partitions of the store.
 */
export function createGuardMetrics(registry: Registry) {
  const api = [registry];
  const metrics = {
    jwksFetches: new Counter({
      name: 'ingesta_auth_jwks_fetches_total',
      help: "Fetches of the token issuer's JWKS, by outcome (ok|failed).",
      labelNames: ['outcome'] as const,
      registers: api,
    }),
    authKeysStale: new Gauge({
      name: 'ingesta_auth_keys_stale',
      help: "1 while the issuer's JWKS cannot be fetched and the keys are past their cache age or missing: tokens are verified with stale keys, or answered 503 once none are left.",
      registers: api,
    }),
    eventPartitions: new Gauge({
      name: 'ingesta_event_partitions',
      help: 'Monthly partitions of the events table, sampled from the store every few minutes by the API.',
      registers: api,
    }),
  };
  for (const outcome of ['ok', 'failed']) metrics.jwksFetches.inc({ outcome }, 0);
  metrics.authKeysStale.set(0);
  return metrics;
}

export type GuardMetrics = ReturnType<typeof createGuardMetrics>;

/**
 * Samples the partition count into its gauge now and then every `intervalMs` (default 5 min), in the
 * background: a scrape never waits on the database, and a slow or absent database leaves the last
 * value. The count changes a few times a month, and the alert on it waits an hour.
 */
export function samplePartitions(
  metrics: GuardMetrics,
  count: () => Promise<number>,
  intervalMs = 300_000,
): { stop(): void } {
  const sample = () => {
    count().then(
      (value) => metrics.eventPartitions.set(value),
      () => {}, // the database being down is reported by its own metrics and readiness
    );
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
