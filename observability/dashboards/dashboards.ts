import type { Dashboard } from './grafana.ts';
import { overviewDashboard } from './overview.ts';
import { sloDashboard } from './slo.ts';

/** Where the generated dashboards live: the chart ships each as a ConfigMap for the Grafana sidecar. */
export const dashboardsDir = 'charts/ingesta/files/dashboards';

export function dashboards(): Dashboard[] {
  return [overviewDashboard(), sloDashboard()];
}

/** File name of a dashboard: its uid, e.g. `ingesta-overview.json`. */
export function dashboardFileName(dashboard: Dashboard): string {
  return `${dashboard.uid}.json`;
}

/** A dashboard as committed: two-space JSON with a final newline. */
export function renderDashboard(dashboard: Dashboard): string {
  return `${JSON.stringify(dashboard, null, 2)}\n`;
}

export interface PanelQuery {
  /** Dashboard uid. */
  dashboard: string;
  panel: string;
  /** Legend of the query, telling several queries of one panel apart. */
  legend: string;
  /** PromQL with Grafana variables: `$namespace`, `$__rate_interval`. */
  expr: string;
}

/** Every PromQL expression of every panel, for checks that evaluate them against a real Prometheus. */
export function panelQueries(): PanelQuery[] {
  return dashboards().flatMap((dashboard) =>
    dashboard.panels.flatMap((panel) =>
      (panel.targets ?? []).map((target) => ({
        dashboard: dashboard.uid,
        panel: panel.title,
        legend: target.legendFormat,
        expr: target.expr,
      })),
    ),
  );
}

/**
 * Replaces the Grafana variables of a panel query the way Grafana would, so Prometheus can run it:
 * `$namespace` by the namespace, `$__rate_interval` by a rate window (four scrape intervals is Grafana's floor).
 */
export function expandVariables(expr: string, values: { namespace: string; rateInterval: string }): string {
  return expr.replaceAll('$__rate_interval', values.rateInterval).replaceAll('$namespace', values.namespace);
}
