/**
 * A few builders for Grafana dashboard JSON (schema 39, Grafana 10/11), as plain objects: enough for
 * time series and stat panels on a Prometheus data source chosen by the `datasource` variable.
 */

/** Every panel and variable queries the Prometheus picked in the `datasource` variable. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JavaScript template.
export const datasource = { type: 'prometheus', uid: '${datasource}' } as const;

/** Grafana unit ids; `suffix:<text>` is Grafana's custom unit appended to the number. */
export type Unit = 'reqps' | 'ops' | 's' | 'percentunit' | 'bytes' | 'short' | 'none' | 'suffix:×';

export interface Query {
  expr: string;
  legendFormat: string;
}

/** A panel before layout: its width in grid columns (of 24) and height in rows. */
export interface PanelSpec {
  kind: 'timeseries' | 'stat';
  title: string;
  description: string;
  unit: Unit;
  queries: Query[];
  width: number;
  height?: number;
  /**
   * Stat: the background colour below the first step, then [value, colour] steps ascending.
   * Time series: the same steps drawn as dashed lines (objectives, alert thresholds).
   */
  thresholds?: { base: string; steps: [number, string][] };
  min?: number;
  max?: number;
  decimals?: number;
}

export interface RowSpec {
  title: string;
  panels: PanelSpec[];
}

export interface GridPos {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Target {
  datasource: typeof datasource;
  expr: string;
  legendFormat: string;
  refId: string;
  range: boolean;
  instant: boolean;
  /** Show the exemplars (trace ids) Prometheus keeps for the histogram the query reads. */
  exemplar: boolean;
}

/** Histograms whose buckets carry exemplars (platform/metrics.ts): a slow bucket leads to a trace. */
const exemplarHistograms =
  /\b(?:http_server_request_duration_seconds|ingesta_event_freshness_seconds)_bucket\b/;

export interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: GridPos;
  description?: string;
  datasource?: typeof datasource;
  targets?: Target[];
  [key: string]: unknown;
}

export interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  [key: string]: unknown;
}

export function timeseries(spec: Omit<PanelSpec, 'kind'>): PanelSpec {
  return { kind: 'timeseries', ...spec };
}

export function stat(spec: Omit<PanelSpec, 'kind'>): PanelSpec {
  return { kind: 'stat', ...spec };
}

export function query(expr: string, legendFormat = '__auto'): Query {
  return { expr, legendFormat };
}

function thresholdSteps(spec: PanelSpec) {
  const { base, steps } = spec.thresholds ?? { base: 'green', steps: [] };
  return {
    mode: 'absolute',
    steps: [{ color: base, value: null }, ...steps.map(([value, color]) => ({ color, value }))],
  };
}

function fieldConfig(spec: PanelSpec) {
  const defaults: Record<string, unknown> = { unit: spec.unit };
  if (spec.min !== undefined) defaults.min = spec.min;
  if (spec.max !== undefined) defaults.max = spec.max;
  if (spec.decimals !== undefined) defaults.decimals = spec.decimals;
  if (spec.kind === 'stat') {
    defaults.color = { mode: 'thresholds' };
    defaults.thresholds = thresholdSteps(spec);
  } else {
    defaults.color = { mode: 'palette-classic' };
    defaults.custom = {
      drawStyle: 'line',
      lineWidth: 1,
      fillOpacity: 10,
      showPoints: 'never',
      spanNulls: false,
      thresholdsStyle: { mode: spec.thresholds ? 'dashed' : 'off' },
    };
    defaults.thresholds = thresholdSteps(spec);
  }
  return { defaults, overrides: [] };
}

function options(spec: PanelSpec) {
  if (spec.kind === 'stat') {
    return {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      colorMode: 'background',
      graphMode: 'none',
      justifyMode: 'auto',
      orientation: 'auto',
      textMode: 'auto',
    };
  }
  return {
    legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
    tooltip: { mode: 'multi', sort: 'desc' },
  };
}

function targets(spec: PanelSpec): Target[] {
  return spec.queries.map((q, index) => ({
    datasource,
    expr: q.expr,
    legendFormat: q.legendFormat,
    refId: String.fromCharCode(65 + index),
    range: spec.kind === 'timeseries',
    instant: spec.kind === 'stat',
    exemplar: spec.kind === 'timeseries' && exemplarHistograms.test(q.expr),
  }));
}

/** Lays rows out top to bottom, panels left to right, wrapping at 24 columns; ids count from 1. */
export function layout(rows: RowSpec[]): Panel[] {
  const panels: Panel[] = [];
  let y = 0;
  for (const row of rows) {
    panels.push({
      id: panels.length + 1,
      type: 'row',
      title: row.title,
      collapsed: false,
      gridPos: { x: 0, y, w: 24, h: 1 },
      panels: [],
    });
    y += 1;
    let x = 0;
    let rowHeight = 0;
    for (const spec of row.panels) {
      const height = spec.height ?? 8;
      if (x + spec.width > 24) {
        y += rowHeight;
        x = 0;
        rowHeight = 0;
      }
      panels.push({
        id: panels.length + 1,
        type: spec.kind,
        title: spec.title,
        description: spec.description,
        datasource,
        gridPos: { x, y, w: spec.width, h: height },
        fieldConfig: fieldConfig(spec),
        options: options(spec),
        targets: targets(spec),
      });
      x += spec.width;
      rowHeight = Math.max(rowHeight, height);
    }
    y += rowHeight;
  }
  return panels;
}

/** The `datasource` and `namespace` variables every ingesta dashboard has. */
function templating() {
  const namespaceQuery = 'label_values(ingesta_db_pool_connections, namespace)';
  return {
    list: [
      {
        name: 'datasource',
        label: 'Data source',
        type: 'datasource',
        query: 'prometheus',
        current: {},
        hide: 0,
        refresh: 1,
        regex: '',
        options: [],
      },
      {
        name: 'namespace',
        label: 'Namespace',
        type: 'query',
        datasource,
        definition: namespaceQuery,
        query: { query: namespaceQuery, refId: 'namespace' },
        current: {},
        hide: 0,
        refresh: 2,
        sort: 1,
        includeAll: false,
        multi: false,
        regex: '',
        options: [],
      },
    ],
  };
}

export function dashboard(options: {
  uid: string;
  title: string;
  description: string;
  timeFrom: string;
  rows: RowSpec[];
}): Dashboard {
  return {
    uid: options.uid,
    title: options.title,
    description: options.description,
    tags: ['ingesta'],
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    timezone: 'browser',
    time: { from: options.timeFrom, to: 'now' },
    refresh: '1m',
    fiscalYearStartMonth: 0,
    liveNow: false,
    annotations: { list: [] },
    links: [
      {
        title: 'ingesta',
        type: 'dashboards',
        tags: ['ingesta'],
        asDropdown: false,
        includeVars: true,
        keepTime: true,
      },
    ],
    templating: templating(),
    panels: layout(options.rows),
  };
}
