import {
  type BurnRateAlert,
  burnRateAlertName,
  burnRateAlerts,
  errorBudget,
  recordedWindows,
  recordName,
  roundNumber,
  type Sli,
  type Slo,
  selector,
  slos,
  sloWindow,
} from '../slos.ts';
import { runbookUrl } from './runbooks.ts';
import type { AlertingRule, RecordingRule, RuleGroup } from './types.ts';

/**
 * The error ratio of an SLI over a window, per namespace: one minus good over total. Written as
 * "1 - good / total" rather than "bad / total" so that a window without any bad event is 0, not empty.
 */
export function errorRatioExpr(sli: Sli, window: string, extraMatchers: string[] = []): string {
  return [
    '1 - (',
    `  sum by (namespace) (rate(${selector(sli.good, extraMatchers)}[${window}]))`,
    '  /',
    `  sum by (namespace) (rate(${selector(sli.total, extraMatchers)}[${window}]))`,
    ')',
  ].join('\n');
}

function recordingRules(slo: Slo): RecordingRule[] {
  return recordedWindows.flatMap((window) =>
    slo.slis.map((sli) => ({
      record: recordName(slo, window),
      expr: errorRatioExpr(sli, window),
      ...(Object.keys(sli.labels).length > 0 ? { labels: { ...sli.labels } } : {}),
    })),
  );
}

/** What a bad event is, as the alert description says it after "<value> of …". */
const badEvents: Record<Slo['name'], string> = {
  availability: 'API requests answered with a 5xx',
  latency: '{{ $labels.operation }} requests answered slower than the objective (200 ms POST, 300 ms GET)',
  freshness: 'stored events took more than 5 s from acceptance to storage',
};

function burnRateAlert(slo: Slo, pair: BurnRateAlert): AlertingRule {
  const threshold = `(${pair.burnRate} * ${errorBudget(slo)})`;
  const alert = burnRateAlertName(slo);
  const urgency = pair.severity === 'page' ? 'fast' : 'steadily';
  return {
    alert,
    expr: [
      `${recordName(slo, pair.longWindow)} > ${threshold}`,
      'and',
      `${recordName(slo, pair.shortWindow)} > ${threshold}`,
    ].join('\n'),
    for: pair.for,
    labels: {
      severity: pair.severity,
      slo: slo.name,
      long_window: pair.longWindow,
      short_window: pair.shortWindow,
    },
    annotations: {
      summary: `ingesta is burning its ${slo.name} error budget ${urgency}`,
      description:
        `{{ $value | humanizePercentage }} of ${badEvents[slo.name]} in namespace {{ $labels.namespace }} ` +
        `over the last ${pair.longWindow} (and the last ${pair.shortWindow}): the error budget of ` +
        `${roundNumber(errorBudget(slo) * 100)} % burns at least ${pair.burnRate}× faster than the ` +
        `${slo.title.toLowerCase()} objective allows.`,
      runbook_url: runbookUrl(alert),
    },
  };
}

/** Name of the recorded remaining error budget of every SLO over the compliance period. */
export const budgetRemainingRecord = 'ingesta:slo_error_budget:remaining_ratio';

/**
 * The error ratio over the whole compliance period, and the budget left, recorded (as Sloth does) from
 * the 5-minute ratios rather than with `rate(…[28d])` over raw buckets on every dashboard refresh: the
 * mean of the 5-minute ratios, which weighs each 5 minutes alike rather than each event.
 */
function periodRules(slo: Slo): RecordingRule[] {
  const fiveMinutes = recordName(slo, '5m');
  const period = `${slo.record}_rate${sloWindow}`;
  return [
    {
      record: period,
      expr: `sum_over_time(${fiveMinutes}[${sloWindow}])\n/\ncount_over_time(${fiveMinutes}[${sloWindow}])`,
    },
    {
      record: budgetRemainingRecord,
      expr: `1 - ${period} / ${errorBudget(slo)}`,
      labels: { slo: slo.name },
    },
  ];
}

/** Metrics the SLOs read besides the SLIs' own: the durability reconciliation's counters. */
const durabilityInputs = ['ingesta_events_published_total', 'ingesta_events_stored_total'];

/**
 * One alert per SLO input metric that no ingesta target exports: a renamed or dropped metric would
 * otherwise silence every burn-rate alert on it (a ratio of nothing is nothing, not a breach).
 */
function absentInputAlerts(): AlertingRule[] {
  const inputs = new Set([
    ...slos.flatMap((slo) => slo.slis.flatMap((sli) => [sli.good.metric, sli.total.metric])),
    ...durabilityInputs,
  ]);
  const alert = 'IngestaSloInputAbsent';
  return [...inputs].sort().map((metric) => ({
    alert,
    expr: `absent(${metric}{job=~".*ingesta.*"})`,
    for: '15m',
    labels: { severity: 'ticket', metric },
    annotations: {
      summary: 'A metric an ingesta SLO is computed from is missing',
      description:
        `No ingesta target has exported ${metric} for 15 minutes: the SLO alerts computed from it cannot ` +
        'fire. Either the metric was renamed or dropped (a release changed it), or no pod of its process ' +
        'is scraped.',
      runbook_url: runbookUrl(alert),
    },
  }));
}

/** Recording rules of every SLI over every window, then the burn-rate alerts on them. */
export function sloRuleGroups(): RuleGroup[] {
  return [
    ...slos.map((slo) => ({ name: `ingesta-slo-${slo.name}.rules`, rules: recordingRules(slo) })),
    { name: 'ingesta-slo-period.rules', rules: slos.flatMap(periodRules) },
    {
      name: 'ingesta-slo.alerts',
      rules: [
        ...slos.flatMap((slo) => burnRateAlerts.map((pair) => burnRateAlert(slo, pair))),
        ...absentInputAlerts(),
      ],
    },
  ];
}
