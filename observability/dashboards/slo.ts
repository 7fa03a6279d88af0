import {
  burnRateAlerts,
  errorBudget,
  type RecordedWindow,
  recordName,
  roundNumber,
  type Sli,
  type Slo,
  selector,
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

/** The SLI over the whole compliance period, straight from the counters (too long a window to record). */
function sliOverPeriod(sli: Sli): string {
  return (
    `sum(rate(${selector(sli.good, [ns])}[${sloWindow}]))\n` +
    `/\nsum(rate(${selector(sli.total, [ns])}[${sloWindow}]))`
  );
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
        queries: [query(sliOverPeriod(sli), 'SLI')],
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
        queries: [query(`1 - (1 - (${sliOverPeriod(sli)})) / ${budget}`, 'remaining')],
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

/** One row per SLI: the SLI and remaining budget over the period, the SLI over time, and burn rates. */
export function sloDashboard(): Dashboard {
  return dashboard({
    uid: 'ingesta-slo',
    title: 'ingesta / SLOs',
    description:
      'Service level objectives of ingesta (docs/slo.md): availability, latency and freshness, with error budgets ' +
      `over ${sloWindow} and burn rates. Burn rates read the recording rules of the chart's PrometheusRule.`,
    timeFrom: 'now-7d',
    rows: slos.flatMap((slo) => slo.slis.map((sli) => sliRow(slo, sli))),
  });
}
