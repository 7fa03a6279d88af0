/**
 * The service level objectives of ingesta: one definition that the Prometheus rules (recording rules
 * and burn-rate alerts) and the SLO dashboard are both generated from, so a target changes in one place.
 * docs/slo.md explains each choice.
 */

/** A PromQL series selector kept as parts, so dashboards can add `namespace="$namespace"`. */
export interface Selector {
  metric: string;
  matchers: string[];
}

/** One service level indicator: the share of good events among all events, as two counters. */
export interface Sli {
  /** Name on dashboards, e.g. "Write latency". */
  name: string;
  /** What a good event is, e.g. "POST /v1/events within 200 ms". */
  title: string;
  /** Labels that tell this SLI apart from others recorded under the same name, e.g. `operation`. */
  labels: Record<string, string>;
  good: Selector;
  total: Selector;
}

export interface Slo {
  /** Value of the `slo` label on alerts, and the alert name's middle: `Ingesta<Name>ErrorBudgetBurn`. */
  name: 'availability' | 'latency' | 'freshness';
  title: string;
  /** What the objective promises, in a sentence. */
  description: string;
  /** Target share of good events over {@link sloWindow}, e.g. 0.999. */
  objective: number;
  /** Name prefix of the recorded error ratios: `<record>_rate<window>`. */
  record: string;
  slis: Sli[];
}

/** The compliance period of every objective. */
export const sloWindow = '28d';

/** The windows recorded for every SLI: all windows the burn-rate alerts and the SLO dashboard read. */
export const recordedWindows = ['5m', '30m', '1h', '2h', '6h', '1d', '3d'] as const;
export type RecordedWindow = (typeof recordedWindows)[number];

/**
 * Multi-window, multi-burn-rate alerting (Google SRE workbook, "Alerting on SLOs"): an alert fires while
 * both the long and the short window burn the budget faster than `burnRate`; the short window makes it
 * stop soon after the problem stops. `for` durations follow the kubernetes-mixin SLO alerts.
 */
export interface BurnRateAlert {
  severity: 'page' | 'ticket';
  longWindow: RecordedWindow;
  shortWindow: RecordedWindow;
  burnRate: number;
  for: string;
}

export const burnRateAlerts: BurnRateAlert[] = [
  // 2 % of a 28-day budget spent in one hour.
  { severity: 'page', longWindow: '1h', shortWindow: '5m', burnRate: 14.4, for: '2m' },
  // 5 % of the budget spent in six hours.
  { severity: 'page', longWindow: '6h', shortWindow: '30m', burnRate: 6, for: '15m' },
  // 10 % of the budget spent in a day.
  { severity: 'ticket', longWindow: '1d', shortWindow: '2h', burnRate: 3, for: '1h' },
  // The whole budget would be spent by the end of the period.
  { severity: 'ticket', longWindow: '3d', shortWindow: '6h', burnRate: 1, for: '3h' },
];

const requestCount = 'http_server_request_duration_seconds_count';
const requestBucket = 'http_server_request_duration_seconds_bucket';

/**
 * `le` of a classic histogram bucket as written by prom-client ("5") and as Prometheus 3 normalises it on
 * ingestion ("5.0"): whole-number bounds need both, fractional ones ("0.2") are the same in both.
 */
export function bucketBound(seconds: number): string {
  return Number.isInteger(seconds) ? `le=~"${seconds}(\\\\.0)?"` : `le="${seconds}"`;
}

export const slos: Slo[] = [
  {
    name: 'availability',
    title: 'Availability',
    description: '99.9 % of API requests are answered without a 5xx status.',
    objective: 0.999,
    record: 'ingesta:http_requests:error_ratio',
    slis: [
      {
        name: 'Availability',
        title: 'API requests without a 5xx',
        labels: {},
        good: { metric: requestCount, matchers: ['status_code!~"5.."'] },
        total: { metric: requestCount, matchers: [] },
      },
    ],
  },
  {
    name: 'latency',
    title: 'Latency',
    description: '99 % of POST /v1/events are answered within 200 ms and 99 % of GET requests within 300 ms.',
    objective: 0.99,
    record: 'ingesta:http_request_latency:error_ratio',
    slis: [
      {
        name: 'Write latency',
        title: 'POST /v1/events within 200 ms',
        labels: { operation: 'write' },
        good: { metric: requestBucket, matchers: ['method="POST"', 'route="/v1/events"', bucketBound(0.2)] },
        total: { metric: requestCount, matchers: ['method="POST"', 'route="/v1/events"'] },
      },
      {
        name: 'Read latency',
        title: 'GET /v1/… within 300 ms',
        labels: { operation: 'read' },
        good: { metric: requestBucket, matchers: ['method="GET"', 'route=~"/v1/.+"', bucketBound(0.3)] },
        total: { metric: requestCount, matchers: ['method="GET"', 'route=~"/v1/.+"'] },
      },
    ],
  },
  {
    name: 'freshness',
    title: 'Freshness',
    description: '99 % of accepted events are stored, and so queryable, within 5 s.',
    objective: 0.99,
    record: 'ingesta:event_freshness:error_ratio',
    slis: [
      {
        name: 'Freshness',
        title: 'Events stored within 5 s of acceptance',
        labels: {},
        good: { metric: 'ingesta_event_freshness_seconds_bucket', matchers: [bucketBound(5)] },
        total: { metric: 'ingesta_event_freshness_seconds_count', matchers: [] },
      },
    ],
  },
];

/** `metric{a, b}`, or just `metric` without matchers. */
export function selector(s: Selector, extraMatchers: string[] = []): string {
  const matchers = [...extraMatchers, ...s.matchers];
  return matchers.length === 0 ? s.metric : `${s.metric}{${matchers.join(', ')}}`;
}

/** The share of the objective's events that may fail: 0.001 for 99.9 %. */
export function errorBudget(slo: Slo): number {
  return roundNumber(1 - slo.objective);
}

/** Rounds away binary floating-point noise (1 - 0.999 = 0.0010000000000000009) for printing in PromQL. */
export function roundNumber(value: number): number {
  return Number(value.toPrecision(10));
}

/** Name of the recorded error ratio of an SLO over a window. */
export function recordName(slo: Slo, window: RecordedWindow): string {
  return `${slo.record}_rate${window}`;
}

/** Alert name of an SLO's burn-rate alerts. */
export function burnRateAlertName(slo: Slo): string {
  return `Ingesta${slo.title}ErrorBudgetBurn`;
}
