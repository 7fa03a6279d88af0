/**
 * Count series: the rollups behind /v1/stats. Each row holds the counts of every bucket of one
 * period, per type (`event_counts`) and per source and type (`event_counts_by_source`):
 *
 * | bucket | period | slots |
 * | --- | --- | --- |
 * | minute | hour | 60 |
 * | hour | day | 24 |
 * | day | month | 31 (slots past the month's end stay 0) |
 *
 * A month of minute buckets is 720 rows to read instead of 43,200, and the stats answer is written
 * straight from them as JSON, with no object per bucket in between (`SeriesJson`).
 */
import type { BucketWidth } from './event-repository.ts';

/** Each bucket width: the period one series row covers (as `date_trunc` names it) and its slots. */
const widths = {
  minute: { period: 'hour', slots: 60, ms: 60_000 },
  hour: { period: 'day', slots: 24, ms: 3_600_000 },
  day: { period: 'month', slots: 31, ms: 86_400_000 },
} as const satisfies Record<BucketWidth, { period: string; slots: number; ms: number }>;

/** SQL rows (width, period, slots, seconds) of `widths`. */
const seriesWidths = `(values ${Object.entries(widths)
  .map(([width, w]) => `('${width}', '${w.period}', ${w.slots}, ${w.ms / 1000})`)
  .join(', ')}) as w(width, period, slots, seconds)`;

/**
 * SELECT of the events of `events` (a relation with time, source and type) counted per width,
 * period, source, type and 1-based slot: the rows `addedCounts` folds into series.
 */
export const slotCounts = (events: string) => `
  select w.width, w.slots, date_trunc(w.period, e.time, 'UTC') as period_start, e.source, e.type,
         1 + floor(extract(epoch from e.time - date_trunc(w.period, e.time, 'UTC')) / w.seconds)::int as slot,
         count(*) as n
  from ${events} e cross join ${seriesWidths}
  group by 1, 2, 3, 4, 5, 6`;

/** The period each width's series row covers, as `date_trunc` names it. */
export const periodOf = (bucket: BucketWidth) => widths[bucket].period;

/** A bucket's width in milliseconds (UTC has no leap seconds or daylight saving to mind). */
export const bucketMs = (bucket: BucketWidth) => widths[bucket].ms;

/**
 * `[fromMs, toMs)` of a stats query: buckets start at or after `from` truncated to the bucket, and
 * before `to`. Bucket starts are whole milliseconds, so a `to` with a nonzero part below the
 * millisecond counts as the next millisecond (`Date.parse` drops that part).
 */
export function bucketBounds(
  bucket: BucketWidth,
  from: string,
  to: string,
): { fromMs: number; toMs: number } {
  const fromMs = Math.floor(Date.parse(from) / bucketMs(bucket)) * bucketMs(bucket);
  const fraction = /:\d{2}\.(\d+)/.exec(to)?.[1] ?? '';
  const toMs = Date.parse(to) + (/[1-9]/.test(fraction.slice(3)) ? 1 : 0);
  return { fromMs, toMs };
}

/** SQL: where the series period of a row ends (`period_start` + an hour, a day or a month, in UTC). */
export const periodEndSql = (bucket: BucketWidth) =>
  `(period_start at time zone 'UTC' + interval '1 ${periodOf(bucket)}') at time zone 'UTC'`;

/**
 * What follows the period's ISO prefix in each slot's bucket start: the minute of an hour
 * (`2026-03-01T08:` + `05:00.000000Z`), the hour of a day, the day of a month.
 */
const slotSuffixes: Record<BucketWidth, { prefixLength: number; suffixes: string[] }> = {
  minute: { prefixLength: 14, suffixes: twoDigits(0, widths.minute.slots).map((mm) => `${mm}:00.000000Z`) },
  hour: { prefixLength: 11, suffixes: twoDigits(0, widths.hour.slots).map((hh) => `${hh}:00:00.000000Z`) },
  day: { prefixLength: 8, suffixes: twoDigits(1, widths.day.slots).map((dd) => `${dd}T00:00:00.000000Z`) },
};

function twoDigits(first: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => String(first + i).padStart(2, '0'));
}

/**
 * A series row's key and version, as the stats query first reads them; with its counts when, and
 * only when, the range cuts its period (those are rendered every time, never kept).
 */
export interface SeriesVersion {
  periodStartMs: string;
  type: string;
  version: string;
  counts?: string | null;
}

/** A series row with its counts in PostgreSQL's array text, `{0,3,…}`. */
export interface SeriesRow extends SeriesVersion {
  counts: string;
}

export interface StatsRange {
  bucket: BucketWidth;
  /** Buckets start at or after this… */
  fromMs: number;
  /** …and before this. */
  toMs: number;
  /** What else selected the rows (table, source filter): rendered periods are kept per scope. */
  scope: string;
}

const openBracket = Buffer.from('[');
const comma = Buffer.from(',');
const closeBracket = Buffer.from(']');

export interface SeriesJsonOptions {
  /** Most bytes of rendered periods kept for the next answer. Default 16 MiB. */
  maxCachedBytes?: number;
}

/**
 * Renders series as the JSON array of stats buckets, `[{"start":…,"type":…,"count":…}, …]`,
 * straight to UTF-8 chunks, with no object per bucket. Periods wholly inside the range are kept
 * rendered (first in, first out) under their scope, period, types and row versions: the
 * stats query reads keys and versions first and fetches counts only for the periods it cannot
 * reuse, so a dashboard asking for the last 30 days again renders only the hour that changed, and
 * an answer is never older than the query that produced it.
 */
export class SeriesJson {
  readonly #maxCachedBytes: number;
  /** Rendered periods by scope, width and types, then by period start; `#order` is their FIFO. */
  readonly #rendered = new Map<string, Map<string, { versions: string; json: Buffer }>>();
  readonly #order: { periods: Map<string, { versions: string; json: Buffer }>; periodStartMs: string }[] = [];
  #cachedBytes = 0;

  constructor(options: SeriesJsonOptions = {}) {
    this.#maxCachedBytes = options.maxCachedBytes ?? 16 * 1024 * 1024;
  }

  /**
   * `index`: the rows in range, sorted by (period, type), with counts exactly for the periods the
   * range cuts. `fetchCounts` returns the rows (with counts, same order) of the other periods whose
   * rendering is not kept.
   */
  async render(
    index: SeriesVersion[],
    range: StatsRange,
    fetchCounts: (periodStartsMs: string[]) => Promise<SeriesRow[]>,
  ): Promise<Buffer[]> {
    // One entry per period, in order; a period's rows are index[first[i]] up to index[first[i + 1]].
    // Parallel arrays rather than an object per period: a month of minutes is 720 periods a request.
    const first: number[] = [];
    for (let i = 0; i < index.length; i++) {
      if (
        i === 0 ||
        (index[i] as SeriesVersion).periodStartMs !== (index[i - 1] as SeriesVersion).periodStartMs
      )
        first.push(i);
    }
    first.push(index.length);
    const periods = first.length - 1;
    const json: (Buffer | undefined)[] = new Array(periods);
    const missing: number[] = [];
    let types = '';
    let kept: Map<string, { versions: string; json: Buffer }> | undefined;
    for (let p = 0; p < periods; p++) {
      const start = first[p] as number;
      const end = first[p + 1] as number;
      const head = index[start] as SeriesVersion;
      if (typeof head.counts === 'string') {
        // Cut by the range: rendered for this answer only.
        json[p] = renderPeriod(index.slice(start, end) as SeriesRow[], range, Number(head.periodStartMs));
        continue;
      }
      const groupTypes = end - start === 1 ? head.type : typesOf(index, start, end);
      if (groupTypes !== types || kept === undefined) {
        types = groupTypes;
        kept = this.#rendered.get(`${range.scope}|${range.bucket}|${types}`);
      }
      const entry = kept?.get(head.periodStartMs);
      if (entry && entry.versions === (end - start === 1 ? head.version : versionsOf(index, start, end))) {
        json[p] = entry.json;
      } else {
        missing.push(p);
      }
    }
    if (missing.length > 0) {
      const fetched = await fetchCounts(
        missing.map((p) => (index[first[p] as number] as SeriesVersion).periodStartMs),
      );
      const groups = new Map<string, SeriesRow[]>();
      for (const row of fetched) {
        const group = groups.get(row.periodStartMs);
        if (group) group.push(row);
        else groups.set(row.periodStartMs, [row]);
      }
      for (const p of missing) {
        const periodStartMs = (index[first[p] as number] as SeriesVersion).periodStartMs;
        const group = groups.get(periodStartMs) ?? []; // gone since the index was read: retention
        json[p] = renderPeriod(group, range, Number(periodStartMs));
        if (group.length > 0) this.#keep(range, group, json[p] as Buffer);
      }
    }
    const chunks: Buffer[] = [openBracket];
    for (const part of json) {
      if (!part || part.length === 0) continue;
      if (chunks.length > 1) chunks.push(comma);
      chunks.push(part);
    }
    chunks.push(closeBracket);
    return chunks;
  }

  #keep(range: StatsRange, group: SeriesRow[], json: Buffer): void {
    if (json.length > this.#maxCachedBytes) return;
    const outer = `${range.scope}|${range.bucket}|${typesOf(group, 0, group.length)}`;
    let periods = this.#rendered.get(outer);
    if (!periods) {
      periods = new Map();
      this.#rendered.set(outer, periods);
    }
    const periodStartMs = (group[0] as SeriesRow).periodStartMs;
    const previous = periods.get(periodStartMs);
    if (previous) this.#cachedBytes -= previous.json.length;
    else this.#order.push({ periods, periodStartMs });
    periods.set(periodStartMs, { versions: versionsOf(group, 0, group.length), json });
    this.#cachedBytes += json.length;
    // First in, first out: the oldest kept period goes first (a period kept again keeps its place).
    while (this.#cachedBytes > this.#maxCachedBytes) {
      const oldest = this.#order.shift();
      if (!oldest) break;
      const entry = oldest.periods.get(oldest.periodStartMs);
      if (entry) this.#cachedBytes -= entry.json.length;
      oldest.periods.delete(oldest.periodStartMs);
    }
  }
}

const typesOf = (rows: SeriesVersion[], start: number, end: number) =>
  rows
    .slice(start, end)
    .map((r) => r.type)
    .join('|');

const versionsOf = (rows: SeriesVersion[], start: number, end: number) =>
  rows
    .slice(start, end)
    .map((r) => r.version)
    .join('|');

/** The buckets of one period's rows (one per type) that start in the range, comma-separated. */
function renderPeriod(group: SeriesRow[], range: StatsRange, periodMs: number): Buffer {
  const { bucket, fromMs, toMs } = range;
  const { prefixLength, suffixes } = slotSuffixes[bucket];
  const stepMs = bucketMs(bucket);
  const prefix = `{"start":"${new Date(periodMs).toISOString().slice(0, prefixLength)}`;
  const types = group.map((r) => ({
    tail: `","type":${JSON.stringify(r.type)},"count":`,
    counts: r.counts.slice(1, -1).split(','),
  }));
  let json = '';
  for (let slot = 0; slot < suffixes.length; slot++) {
    const startMs = periodMs + slot * stepMs;
    if (startMs < fromMs) continue;
    if (startMs >= toMs) break;
    for (const { tail, counts } of types) {
      const count = counts[slot];
      if (count === undefined || count === '0') continue;
      json += `${json.length === 0 ? '' : ','}${prefix}${suffixes[slot]}${tail}${count}}`;
    }
  }
  return Buffer.from(json);
}

/**
 * SELECT of one full series row per (width, …keys, period) with the counts of `slotCounts` (rows of
 * width, slots, period_start, …keys, slot, n, as `slotCounts()` makes them) added up per slot; in
 * key order, so concurrent statements lock the rows they upsert in the same order.
 */
export function addedCounts(slotCounts: string, keys: string[]): string {
  const k = keys.join(', ');
  // Each period's filled slots travel as two small arrays and become a full series on their own,
  // so the work grows with the periods, whatever the planner thinks of the input's size.
  return `select width, ${k}, period_start,
      array(select coalesce(f.n, 0) from generate_series(1, slots) g
            left join unnest(filled, ns) as f(slot, n) on f.slot = g order by g) as counts
    from (
      select width, slots, period_start, ${k}, array_agg(slot) as filled, array_agg(n) as ns
      from (
        select width, slots, period_start, ${k}, slot, sum(n)::bigint as n
        from ${slotCounts} group by width, slots, period_start, ${k}, slot
      ) per_slot
      group by width, slots, period_start, ${k}
    ) per_period
    order by width, ${k}, period_start`;
}

/**
 * The SET list of ON CONFLICT DO UPDATE: the stored series of `table` plus the incoming one, slot
 * by slot, under a new version.
 */
export const addToSeries = (table: string) =>
  `counts = array(select a + b from unnest(${table}.counts, excluded.counts) with ordinality as u(a, b, i) order by i),
   version = nextval('event_counts_version')`;
