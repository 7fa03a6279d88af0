/** One histogram's cumulative buckets (le in seconds, +Inf last) and count, from Prometheus text. */
export interface HistogramSample {
  buckets: { le: number; count: number }[];
  count: number;
  sum: number;
}

/** Reads a process's /metrics from its admin port. */
export async function scrape(adminPort: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
  if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
  return response.text();
}

/** The histogram series whose labels include every given label. */
export function histogram(text: string, name: string, labels: Record<string, string>): HistogramSample {
  const sample: HistogramSample = { buckets: [], count: 0, sum: 0 };
  const matches = (labelText: string) =>
    Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`));
  for (const line of text.split('\n')) {
    const m = /^(\w+)\{([^}]*)\} ([\d.eE+-]+|NaN)$/.exec(line);
    if (!m || !matches(m[2] as string)) continue;
    const value = Number(m[3]);
    if (m[1] === `${name}_bucket`) {
      const le = /le="([^"]+)"/.exec(m[2] as string)?.[1] ?? '+Inf';
      sample.buckets.push({ le: le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), count: value });
    } else if (m[1] === `${name}_count`) sample.count = value;
    else if (m[1] === `${name}_sum`) sample.sum = value;
  }
  sample.buckets.sort((a, b) => a.le - b.le);
  return sample;
}

/** The observations between two scrapes of the same histogram. */
export function delta(after: HistogramSample, before: HistogramSample): HistogramSample {
  return {
    buckets: after.buckets.map((b) => ({
      le: b.le,
      count: b.count - (before.buckets.find((x) => x.le === b.le)?.count ?? 0),
    })),
    count: after.count - before.count,
    sum: after.sum - before.sum,
  };
}

/** The upper edge of the bucket holding quantile q, in seconds: the histogram's honest bound. */
export function bucketBound(q: number, h: HistogramSample): number {
  const rank = q * h.count;
  return h.buckets.find((b) => b.count >= rank)?.le ?? Number.NaN;
}
