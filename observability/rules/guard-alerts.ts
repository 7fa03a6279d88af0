import { runbookUrl } from './runbooks.ts';
import type { AlertingRule, RuleGroup } from './types.ts';

/**
 * Above this many partitions, a query without a time range takes about six locks per partition, and a
 * few concurrent ones approach PostgreSQL's shared lock table (max_locks_per_transaction × connections).
 * The time window keeps the count near its months (default 24 back and the maintained months ahead).
 */
export const partitionCountThreshold = 150;

/** The guards against hostile or unlucky clients and dependencies (docs/critical-points.md). */
export function guardRuleGroup(): RuleGroup {
  const rules: AlertingRule[] = [
    {
      alert: 'IngestaIssuerKeysStale',
      // Every API pod fetches the same issuer: one alert per namespace.
      expr: 'max by (namespace) (ingesta_auth_keys_stale) > 0',
      for: '5m',
      labels: { severity: 'page' },
      annotations: {
        summary: "The API verifies tokens with stale keys: the token issuer's JWKS cannot be fetched",
        description:
          'API pods in namespace {{ $labels.namespace }} cannot fetch the JWKS of the token issuer and verify ' +
          'tokens with keys past their cache age. Once AUTH_JWKS_MAX_STALE_SEC (default 1 h) has passed, ' +
          'every authenticated request is answered 503.',
        runbook_url: runbookUrl('IngestaIssuerKeysStale'),
      },
    },
    {
      alert: 'IngestaEventPartitionsHigh',
      // Every API pod samples the same count from the store: max, not sum.
      expr: `max by (namespace) (ingesta_event_partitions) > ${partitionCountThreshold}`,
      for: '1h',
      labels: { severity: 'ticket' },
      annotations: {
        summary: 'The ingesta event table has more monthly partitions than the time window allows for',
        description:
          'The events table of namespace {{ $labels.namespace }} has {{ $value }} partitions. Each query ' +
          'without a time range locks about six per partition; PostgreSQL shares one lock table between ' +
          'all sessions.',
        runbook_url: runbookUrl('IngestaEventPartitionsHigh'),
      },
    },
  ];
  return { name: 'ingesta.guards', rules };
}
