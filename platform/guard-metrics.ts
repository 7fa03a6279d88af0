import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * Metrics of the guards against hostile or unlucky clients and dependencies: the token issuer's
 * keys (API) and the number of monthly partitions (both processes read it from the store).
 */
export function createGuardMetrics(registry: Registry, role: 'api' | 'consumer') {
  const api = role === 'api' ? [registry] : [];
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
      help: 'Monthly partitions of the events table, read from the store at scrape time.',
      registers: [registry],
    }),
  };
  if (role === 'api') {
    for (const outcome of ['ok', 'failed']) metrics.jwksFetches.inc({ outcome }, 0);
    metrics.authKeysStale.set(0);
  }
  return metrics;
}

export type GuardMetrics = ReturnType<typeof createGuardMetrics>;

/** Sets the partition gauge at each scrape from `count`; a failed count leaves the last value. */
export function observePartitions(metrics: GuardMetrics, count: () => Promise<number>): void {
  (metrics.eventPartitions as unknown as { collect?: () => Promise<void> }).collect = async () => {
    try {
      metrics.eventPartitions.set(await count());
    } catch {
      // The database being down is reported by its own metrics and readiness.
    }
  };
}
