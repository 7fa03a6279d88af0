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
      help: 'Monthly partitions of the events table, counted by the API in the background, at most every 5 minutes.',
      registers: api,
    }),
  };
  for (const outcome of ['ok', 'failed']) metrics.jwksFetches.inc({ outcome }, 0);
  metrics.authKeysStale.set(0);
  return metrics;
}

export type GuardMetrics = ReturnType<typeof createGuardMetrics>;

/**
 * Keeps the partition gauge current without a scrape ever waiting on the database: a scrape reports
 * the last count and, when it is older than `maxAgeMs` (default 5 min), starts a new count in the
 * background. No scrape, no query; a slow or absent database leaves the last value. The count
 * changes a few times a month, and the alert on it waits an hour.
 */
export function samplePartitions(
  metrics: GuardMetrics,
  count: () => Promise<number>,
  { maxAgeMs = 300_000, now = Date.now }: { maxAgeMs?: number; now?: () => number } = {},
): void {
  let sampledAt = Number.NEGATIVE_INFINITY;
  let running = false;
  (metrics.eventPartitions as unknown as { collect?: () => void }).collect = () => {
    if (running || now() - sampledAt < maxAgeMs) return;
    running = true;
    sampledAt = now();
    count()
      .then((value) => metrics.eventPartitions.set(value))
      // The database being down is reported by its own metrics and readiness.
      .catch(() => {})
      .finally(() => {
        running = false;
      });
  };
}
