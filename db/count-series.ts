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

/** SQL rows (width, period, slots, seconds) for the three widths. */
const seriesWidths = `(values ('minute', 'hour', 60, 60), ('hour', 'day', 24, 3600), ('day', 'month', 31, 86400))
  as w(width, period, slots, seconds)`;

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
export const periodOf = { minute: 'hour', hour: 'day', day: 'month' } as const satisfies Record<
  BucketWidth,
  string
>;

/** Bucket widths in milliseconds (UTC has no leap seconds or daylight saving to mind). */
export const bucketMs = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;

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
  const fromMs = Math.floor(Date.parse(from) / bucketMs[bucket]) * bucketMs[bucket];
  const fraction = /:\d{2}\.(\d+)/.exec(to)?.[1] ?? '';
  const toMs = Date.parse(to) + (/[1-9]/.test(fraction.slice(3)) ? 1 : 0);
  return { fromMs, toMs };
}

/** SQL: where the series period of a row ends (`period_start` + an hour, a day or a month, in UTC). */
export const periodEndSql = (bucket: BucketWidth) =>
  `(period_start at time zone 'UTC' + interval '1 ${periodOf[bucket]}') at time zone 'UTC'`;

/**
 * What follows the period's ISO prefix in each slot's bucket start: the minute of an hour
 * (`2026-03-01T08:` + `05:00.000000Z`), the hour of a day, the day of a month.
 */
const slotSuffixes: Record<BucketWidth, { prefixLength: number; suffixes: string[] }> = {
  minute: { prefixLength: 14, suffixes: twoDigits(0, 60).map((mm) => `${mm}:00.000000Z`) },
  hour: { prefixLength: 11, suffixes: twoDigits(0, 24).map((hh) => `${hh}:00:00.000000Z`) },
  day: { prefixLength: 8, suffixes: twoDigits(1, 31).map((dd) => `${dd}T00:00:00.000000Z`) },
};

function twoDigits(first: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => String(first + i).padStart(2, '0'));
}

/**
 * A series row's key and version, as the stats query first reads them; with its counts when its
 * period is cut by the range, since those are rendered every time.
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

/** Where the period starting at `periodMs` ends: an hour, a day or a calendar month (UTC) later. */
function periodEndMs(bucket: BucketWidth, periodMs: number): number {
  if (bucket === 'minute') return periodMs + 3_600_000;
  if (bucket === 'hour') return periodMs + 86_400_000;
  const start = new Date(periodMs);
  return Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1);
}

/** Consecutive rows of the same period (one per type), in order. */
function byPeriod<T extends SeriesVersion>(rows: T[]): T[][] {
  const groups: T[][] = [];
  for (const row of rows) {
    const last = groups.at(-1);
    if (last && (last[0] as T).periodStartMs === row.periodStartMs) last.push(row);
    else groups.push([row]);
  }
  return groups;
}

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
  readonly #rendered = new Map<string, { versions: string; json: Buffer }>();
  #cachedBytes = 0;

  constructor(options: SeriesJsonOptions = {}) {
    this.#maxCachedBytes = options.maxCachedBytes ?? 16 * 1024 * 1024;
  }

  /**
   * `index`: the rows in range, sorted by (period, type), with counts at least for the periods the
   * range cuts. `fetchCounts` returns the rows (with counts, same order) of the other periods whose
   * rendering is not kept.
   */
  async render(
    index: SeriesVersion[],
    range: StatsRange,
    fetchCounts: (periodStartsMs: string[]) => Promise<SeriesRow[]>,
  ): Promise<Buffer[]> {
    const periods = byPeriod(index).map((group) => {
      const periodMs = Number((group[0] as SeriesVersion).periodStartMs);
      const whole = periodMs >= range.fromMs && periodEndMs(range.bucket, periodMs) <= range.toMs;
      const withCounts = group.every((r) => typeof r.counts === 'string')
        ? (group as SeriesRow[])
        : undefined;
      let json = whole ? this.#kept(range, group) : undefined;
      if (!json && withCounts) {
        json = renderPeriod(withCounts, range, periodMs);
        if (whole) this.#keep(range, withCounts, json);
      }
      return { periodMs, whole, json };
    });
    const missing = periods.filter((p) => p.json === undefined);
    if (missing.length > 0) {
      const fetched = new Map(
        byPeriod(await fetchCounts(missing.map((p) => String(p.periodMs)))).map((g) => [
          Number((g[0] as SeriesRow).periodStartMs),
          g,
        ]),
      );
      for (const p of missing) {
        const group = fetched.get(p.periodMs) ?? []; // gone since the index was read: retention
        p.json = renderPeriod(group, range, p.periodMs);
        if (p.whole && group.length > 0) this.#keep(range, group, p.json);
      }
    }
    const chunks: Buffer[] = [openBracket];
    for (const { json } of periods) {
      if (!json || json.length === 0) continue;
      if (chunks.length > 1) chunks.push(comma);
      chunks.push(json);
    }
    chunks.push(closeBracket);
    return chunks;
  }

  #key(range: StatsRange, group: SeriesVersion[]): string {
    const types = group.length === 1 ? (group[0] as SeriesVersion).type : group.map((r) => r.type).join('|');
    return `${range.scope}|${range.bucket}|${(group[0] as SeriesVersion).periodStartMs}|${types}`;
  }

  #kept(range: StatsRange, group: SeriesVersion[]): Buffer | undefined {
    const key = this.#key(range, group);
    const entry = this.#rendered.get(key);
    if (!entry) return undefined;
    const versions =
      group.length === 1 ? (group[0] as SeriesVersion).version : group.map((r) => r.version).join('|');
    return entry.versions === versions ? entry.json : undefined;
  }

  #keep(range: StatsRange, group: SeriesRow[], json: Buffer): void {
    const key = this.#key(range, group);
    const previous = this.#rendered.get(key);
    if (previous) {
      this.#rendered.delete(key);
      this.#cachedBytes -= previous.json.length;
    }
    if (json.length > this.#maxCachedBytes) return;
    this.#rendered.set(key, { versions: group.map((r) => r.version).join('|'), json });
    this.#cachedBytes += json.length;
    for (const [oldest, entry] of this.#rendered) {
      if (this.#cachedBytes <= this.#maxCachedBytes) break;
      this.#rendered.delete(oldest);
      this.#cachedBytes -= entry.json.length;
    }
  }
}

/** The buckets of one period's rows (one per type) that start in the range, comma-separated. */
function renderPeriod(group: SeriesRow[], range: StatsRange, periodMs: number): Buffer {
  const { bucket, fromMs, toMs } = range;
  const { prefixLength, suffixes } = slotSuffixes[bucket];
  const stepMs = bucketMs[bucket];
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
