import type { Registry, RegistryContentType } from 'prom-client';

/** The content types of the two text expositions /metrics serves. */
export const exposition = {
  prometheus: 'text/plain; version=0.0.4; charset=utf-8',
  openMetrics: 'application/openmetrics-text; version=1.0.0; charset=utf-8',
} as const;

export type ExpositionFormat = keyof typeof exposition;

/** OpenMetrics when the scraper's Accept header names it (Prometheus does by default), else text 0.0.4. */
export function negotiateFormat(accept: string | undefined): ExpositionFormat {
  return /application\/openmetrics-text/i.test(accept ?? '') ? 'openMetrics' : 'prometheus';
}

interface Sample {
  metricName?: string;
  labels: Record<string, string | number>;
  value: number;
  exemplar?: { labelSet: Record<string, string | number>; value: number | null; timestamp?: number } | null;
}

const escapeHelp = (text: string) => text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabel = (value: string | number) =>
  String(value).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const labelText = (labels: Record<string, string | number>) => {
  const parts = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabel(value)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
};
const number = (value: number) =>
  Number.isNaN(value) ? 'NaN' : value === Infinity ? '+Inf' : value === -Infinity ? '-Inf' : String(value);

/**
 * The registry as text, in either format; OpenMetrics carries the exemplars (trace ids) of histogram
 * buckets. prom-client's own formatter serves one format per registry and renames counters in place
 * for OpenMetrics (it strips `_total` from the metric objects), so both formats are written here from
 * the collected values, leaving the metrics untouched.
 */
export async function metricsText(
  registry: Registry<RegistryContentType>,
  format: ExpositionFormat,
): Promise<string> {
  const openMetrics = format === 'openMetrics';
  const families = await Promise.all(
    (registry.getMetricsAsArray() as unknown as { get(): Promise<unknown> }[]).map(async (metric) => {
      const { name, help, type, values } = (await metric.get()) as {
        name: string;
        help: string;
        type: string;
        values: Sample[];
      };
      // OpenMetrics names a counter's family without `_total` and its sample with it.
      const family = openMetrics && type === 'counter' ? name.replace(/_total$/, '') : name;
      const typeName = type === 'untyped' && openMetrics ? 'unknown' : type;
      const lines = [`# HELP ${family} ${escapeHelp(help)}`, `# TYPE ${family} ${typeName}`];
      for (const sample of values ?? []) {
        const sampleName =
          openMetrics && type === 'counter' ? `${family}_total` : (sample.metricName ?? name);
        let line = `${sampleName}${labelText(sample.labels)} ${number(sample.value)}`;
        const exemplar = sample.exemplar;
        if (openMetrics && exemplar && exemplar.value !== null && Object.keys(exemplar.labelSet).length > 0) {
          line += ` # ${labelText(exemplar.labelSet)} ${number(exemplar.value)}`;
          if (exemplar.timestamp !== undefined) line += ` ${exemplar.timestamp}`;
        }
        lines.push(line);
      }
      return lines.join('\n');
    }),
  );
  return openMetrics ? `${families.join('\n')}\n# EOF\n` : `${families.join('\n\n')}\n`;
}
