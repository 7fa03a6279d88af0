import { durabilityRecords, durabilityTolerance, durabilityWindows } from '../rules/durability-rules.ts';
import {
  burnRateAlerts,
  errorBudget,
  type RecordedWindow,
  recordName,
  roundNumber,
  type Sli,
  type Slo,
  slos,
  sloWindow,
} from '../slos.ts';
import { type Dashboard, dashboard, query, type RowSpec, stat, timeseries } from './grafana.ts';

const ns = 'namespace="$namespace"';

/** Burn rates the dashboard plots: the long windows of the page and ticket alerts. */
const plottedWindows: RecordedWindow[] = ['1h', '6h', '3d'];

/** The recorded error ratio of one SLI, e.g. `ingesta:http_request_latency:error_ratio_rate1h{…, operation="read"}`. */
function recorded(slo: Slo, sli: Sli, window: RecordedWindow): string {
  const matchers = [ns, ...Object.entries(sli.labels).map(([name, value]) => `${name}="${value}"`)];
  return `${recordName(slo, window)}{${matchers.join(', ')}}`;
}

/** The SLI over the whole compliance period, from its recorded error ratio (observability/rules). */
function sliOverPeriod(slo: Slo, sli: Sli): string {
  const matchers = [ns, ...Object.entries(sli.labels).map(([name, value]) => `${name}="${value}"`)];
  return `1 - ${slo.record}_rate${sloWindow}{${matchers.join(', ')}}`;
}

function percent(ratio: number): string {
  return `${roundNumber(ratio * 100)} %`;
}

function sliRow(slo: Slo, sli: Sli): RowSpec {
  const budget = errorBudget(slo);
  return {
    title: `${sli.name}: ${sli.title} (objective ${percent(slo.objective)} over ${sloWindow})`,
    panels: [
      stat({
        title: `${sli.name} SLI, last ${sloWindow}`,
        description: `Share of good events over the compliance period. Objective: ${percent(slo.objective)}.`,
        unit: 'percentunit',
        decimals: 3,
        width: 4,
        thresholds: { base: 'red', steps: [[slo.objective, 'green']] },
        queries: [query(sliOverPeriod(slo, sli), 'SLI')],
      }),
      stat({
        title: `${sli.name} error budget remaining, last ${sloWindow}`,
        description:
          `Share of the error budget (${percent(budget)} of events may fail) not yet spent over the period. ` +
          'Below zero, the objective is missed: see the error budget policy in docs/slo.md.',
        unit: 'percentunit',
        decimals: 1,
        width: 4,
        thresholds: {
          base: 'red',
          steps: [
            [0, 'orange'],
            [0.25, 'green'],
          ],
        },
        queries: [query(`1 - (1 - (${sliOverPeriod(slo, sli)})) / ${budget}`, 'remaining')],
      }),
      timeseries({
        title: `${sli.name} SLI over 1 h windows`,
        description: `Share of good events over the last hour at each point. Objective: ${percent(slo.objective)} (dashed line).`,
        unit: 'percentunit',
        decimals: 2,
        width: 8,
        max: 1,
        thresholds: { base: 'transparent', steps: [[slo.objective, 'red']] },
        queries: [query(`1 - ${recorded(slo, sli, '1h')}`, 'SLI (1h)')],
      }),
      timeseries({
        title: `${sli.name} error budget burn rate`,
        description:
          'How many times faster than sustainable the budget burns (1 = exactly spent at the end of the period). ' +
          `Dashed lines: the alert thresholds (${burnRateAlerts
            .map((pair) => `${pair.severity} at ${pair.burnRate} over ${pair.longWindow}`)
            .join(', ')}).`,
        unit: 'suffix:×',
        width: 8,
        min: 0,
        thresholds: {
          base: 'transparent',
          steps: [...new Set(burnRateAlerts.map((pair) => pair.burnRate))]
            .sort((a, b) => a - b)
            .map((burnRate): [number, string] => [burnRate, burnRate >= 6 ? 'red' : 'orange']),
        },
        queries: plottedWindows.map((window) => query(`${recorded(slo, sli, window)} / ${budget}`, window)),
      }),
    ],
  };
}

/** Durability: the reconciliation of accepted against stored or dead-lettered events (docs/slo.md). */
function durabilityRow(): RowSpec {
  const r = durabilityRecords;
  return {
    title: 'Durability: every accepted event stored or in the DLQ (objective: none unreconciled)',
    panels: [
      stat({
        title: 'Unreconciled events now',
        description:
          `Events accepted over the last ${durabilityWindows.window} and neither stored nor moved to the DLQ. ` +
          `IngestaEventsNotStored pages above ${durabilityTolerance.events} plus ` +
          `${durabilityTolerance.share * 100} % of the accepted ones for ${durabilityWindows.for}.`,
        unit: 'short',
        decimals: 0,
        width: 4,
        thresholds: { base: 'green', steps: [[durabilityTolerance.events + 1, 'red']] },
        queries: [query(`${r.unreconciled}{${ns}}`, 'unreconciled')],
      }),
      stat({
        title: 'Unreconciled share now',
        description: 'Unreconciled events over accepted events in the same window.',
        unit: 'percentunit',
        decimals: 2,
        width: 4,
        thresholds: { base: 'green', steps: [[durabilityTolerance.share, 'red']] },
        queries: [query(`${r.ratio}{${ns}}`, 'ratio')],
      }),
      timeseries({
        title: `Accepted, handled and unreconciled events per ${durabilityWindows.window}`,
        description:
          'Accepted: 202s (published to SNS). Handled: inserted, duplicate or moved to the DLQ by the consumer. ' +
          'A gap that holds means events accepted and not stored.',
        unit: 'short',
        width: 16,
        min: 0,
        queries: [
          query(`${r.accepted}{${ns}}`, 'accepted'),
          query(`${r.handled}{${ns}}`, 'handled'),
          query(`${r.unreconciled}{${ns}}`, 'unreconciled'),
        ],
      }),
    ],
  };
}

/** One row per SLI: the SLI and remaining budget over the period, the SLI over time, and burn rates. */
export function sloDashboard(): Dashboard {
  return dashboard({
    uid: 'ingesta-slo',
    title: 'ingesta / SLOs',
    description:
      'Service level objectives of ingesta (docs/slo.md): availability, latency, freshness and durability, with error budgets ' +
      `over ${sloWindow} and burn rates. Burn rates read the recording rules of the chart's PrometheusRule.`,
    timeFrom: 'now-7d',
    rows: [...slos.flatMap((slo) => slo.slis.map((sli) => sliRow(slo, sli))), durabilityRow()],
  });
}
