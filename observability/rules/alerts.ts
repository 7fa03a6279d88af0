import { runbookUrl } from './runbooks.ts';
import type { AlertingRule, RuleGroup, Severity } from './types.ts';

/**
 * Deployments of the chart: `<fullname>-api` and `<fullname>-consumer`, where the fullname is the release
 * name when it contains "ingesta" and `<release>-ingesta` otherwise.
 */
const deployments = 'deployment=~".*ingesta.*-(api|consumer)"';
/** Scrape jobs of the chart's ServiceMonitor: named after its Services, which carry the fullname. */
const jobs = 'job=~".*ingesta.*"';
/** The chart's partition maintenance CronJob, `<fullname>-maintenance`. */
const maintenanceCronJob = 'cronjob=~".*ingesta.*-maintenance"';

/** The newest poll any consumer of a namespace reported within the hour, even from a pod now unscraped. */
const lastPollSeen = 'max by (namespace) (max_over_time(ingesta_consumer_last_poll_timestamp_seconds[1h]))';

function alert(options: {
  name: string;
  severity: Severity;
  expr: string;
  for: string;
  summary: string;
  description: string;
}): AlertingRule {
  return {
    alert: options.name,
    expr: options.expr,
    for: options.for,
    labels: { severity: options.severity },
    annotations: {
      summary: options.summary,
      description: options.description,
      runbook_url: runbookUrl(options.name),
    },
  };
}

/** Causes the SLO alerts cannot see, or see late: a stopped pipeline produces no bad events at all. */
export function operationalRuleGroup(): RuleGroup {
  return {
    name: 'ingesta.alerts',
    rules: [
      alert({
        name: 'IngestaDeadLetterQueueNotEmpty',
        severity: 'ticket',
        // Every consumer pod samples the same queue: max, not sum.
        expr: 'max by (namespace) (ingesta_queue_messages{queue="dlq", state="visible"}) > 0',
        for: '5m',
        summary: 'Events are waiting in the ingesta dead-letter queue',
        description:
          '{{ $value }} messages sit in the dead-letter queue of namespace {{ $labels.namespace }}: accepted ' +
          'events the consumer could not store. They are kept, not lost, until inspected and redriven or purged.',
      }),
      alert({
        name: 'IngestaConsumerStalled',
        severity: 'page',
        // Per namespace, not per pod: the liveness probe restarts a pod that stops polling, and the new
        // pod exports 0 until its first poll, so only "no pod has polled lately" survives a restart loop.
        // max_over_time keeps the last value a hung pod reported: its scrapes fail, its series go stale,
        // and a plain selector would go empty instead of firing (IngestaConsumerAbsent takes over at 1h).
        expr: `time() - ${lastPollSeen} > 90`,
        for: '2m',
        summary: 'No ingesta consumer is polling SQS',
        description:
          'No consumer pod in namespace {{ $labels.namespace }} has completed an SQS poll for more than 90 s ' +
          '(long polls take at most 20 s), for 2 minutes now: accepted events are not being stored.',
      }),
      alert({
        name: 'IngestaQueueOldestMessageTooOld',
        severity: 'page',
        // The consumer samples the age: while it is silent (hung, gone) the last reported age grows by
        // the time it has not polled beyond the 90 s a healthy poller never reaches.
        expr: [
          'max by (namespace) (last_over_time(ingesta_queue_oldest_message_age_seconds{queue="main"}[1h]))',
          `  + (clamp_min(time() - ${lastPollSeen}, 90) - 90)`,
          '> 5',
        ].join('\n'),
        for: '10m',
        summary: 'ingesta events wait in SQS longer than the freshness objective',
        description:
          'The oldest message in the main queue of namespace {{ $labels.namespace }} is ' +
          '{{ $value | humanizeDuration }} old and has stayed above 5 s for 10 minutes: events are not ' +
          'being stored in time (consumers stalled, too few, or the database slow).',
      }),
      alert({
        name: 'IngestaConsumerAbsent',
        severity: 'page',
        // No consumer has reported for 10 minutes: deleted, scaled to zero, or never scraped at all.
        expr: `absent(ingesta_consumer_last_poll_timestamp_seconds{${jobs}})`,
        for: '10m',
        summary: 'No ingesta consumer reports metrics',
        description:
          'No consumer pod has exported ingesta_consumer_last_poll_timestamp_seconds for 10 minutes: either ' +
          'no consumer runs, or Prometheus cannot scrape any. Accepted events are not being stored, and the ' +
          'freshness SLO and stall alerts are blind.',
      }),
      alert({
        name: 'IngestaPublishFailing',
        severity: 'ticket',
        expr: 'sum by (namespace) (rate(ingesta_events_published_total{outcome="failed"}[5m])) > 0',
        for: '5m',
        summary: 'The ingesta API fails to publish events to SNS',
        description:
          '{{ printf "%.2f" $value }} events per second in namespace {{ $labels.namespace }} could not be ' +
          'published to SNS for 5 minutes; their clients got a 503 with Retry-After.',
      }),
      alert({
        name: 'IngestaTargetDown',
        severity: 'ticket',
        expr: `up{${jobs}} == 0`,
        for: '5m',
        summary: 'Prometheus cannot scrape an ingesta pod',
        description:
          'Target {{ $labels.instance }} (pod {{ $labels.pod }}, job {{ $labels.job }}) in namespace ' +
          '{{ $labels.namespace }} has not answered /metrics on the admin port for 5 minutes.',
      }),
      alert({
        name: 'IngestaPodsNotReady',
        severity: 'ticket',
        expr: `kube_deployment_status_replicas_available{${deployments}}\n  < kube_deployment_spec_replicas{${deployments}}`,
        for: '15m',
        summary: 'An ingesta deployment runs with fewer ready pods than desired',
        description:
          'Deployment {{ $labels.deployment }} in namespace {{ $labels.namespace }} has had only ' +
          '{{ $value }} available replicas, fewer than desired, for 15 minutes.',
      }),
      alert({
        name: 'IngestaMaintenanceNotSucceeding',
        severity: 'ticket',
        // Daily by default: two days without a success is two missed runs, not a late one.
        expr: `time() - kube_cronjob_status_last_successful_time{${maintenanceCronJob}} > 2 * 86400`,
        for: '1h',
        summary: 'The partition maintenance job has not succeeded for two days',
        description:
          'CronJob {{ $labels.cronjob }} in namespace {{ $labels.namespace }} last succeeded ' +
          '{{ $value | humanizeDuration }} ago. Events are still stored (writers create a missing ' +
          "month's partition), but the retention is not applied and the next months are not made ahead.",
      }),
      alert({
        name: 'IngestaDeploymentUnavailable',
        severity: 'page',
        expr: [
          `kube_deployment_status_replicas_available{${deployments}} == 0`,
          'and',
          `kube_deployment_spec_replicas{${deployments}} > 0`,
        ].join('\n'),
        for: '5m',
        summary: 'An ingesta deployment has no ready pod',
        description:
          'Deployment {{ $labels.deployment }} in namespace {{ $labels.namespace }} has had no available ' +
          'replica for 5 minutes. Without API pods nothing is accepted; without consumer pods nothing is stored.',
      }),
    ],
  };
}
