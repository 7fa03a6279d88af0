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

/** A series row's key and version. */
export interface SeriesVersion {
  periodStartMs: string;
  type: string;
  version: string;
}

/** A series row with its counts in PostgreSQL's array text, `{0,3,…}`. */
export interface SeriesRow extends SeriesVersion {
  counts: string;
}

/**
 * The one row the stats query reads. The rows of the periods wholly inside the range, in (period,
 * type) order, as three lists: period starts and versions comma-separated, types as a JSON array.
 * And the rows of the periods the range cuts (its first and its last) with their counts, as a JSON
 * array of `[periodStartMs, type, version, counts]`. A list with nothing in it is null.
 */
export interface SeriesSummary {
  starts: string | null;
  types: string | null;
  versions: string | null;
  cut: string | null;
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
  /** Most bytes of rendered JSON kept for the next answers. Default 16 MiB. */
  maxCachedBytes?: number;
}

/** Something kept, in the first-in-first-out order of what is kept. */
interface Kept {
  bytes: number;
  forget(): void;
}

/**
 * Renders series as the JSON array of stats buckets, `[{"start":…,"type":…,"count":…}, …]`,
 * straight to UTF-8, with no object per bucket. Versions say whether a rendering still holds: every
 * write gives a series row a new version from one sequence, so a list of versions names exactly
 * which rows, in which state, a rendering was made of. Two things are kept (first in, first out,
 * within `maxCachedBytes`):
 *
 * - the whole periods of recent answers, joined, under the versions of their rows: a dashboard
 *   asking for the last 30 days again gets them back as one buffer, with only the periods its range
 *   cuts (the first and the last) rendered anew;
 * - each whole period, under its scope, types and versions: when the span of whole periods changes
 *   (the hour rolls over, a late event lands), only periods not kept are fetched and rendered.
 *
 * An answer is never older than the query that produced it.
 */
export class SeriesJson {
  readonly #maxCachedBytes: number;
  /** Joined whole periods, by scope, width and the versions of their rows. */
  readonly #spans = new Map<string, Buffer>();
  /** Rendered periods by scope, width and types, then by period start. */
  readonly #periods = new Map<string, Map<string, { versions: string; json: Buffer; kept: Kept }>>();
  readonly #order: Kept[] = [];
  #cachedBytes = 0;

  constructor(options: SeriesJsonOptions = {}) {
    this.#maxCachedBytes = options.maxCachedBytes ?? 16 * 1024 * 1024;
  }

  /**
   * `fetchCounts` returns the rows (with counts, in (period, type) order) of the given whole periods,
   * for those whose rendering is not kept.
   */
  async render(
    summary: SeriesSummary,
    range: StatsRange,
    fetchCounts: (periodStartsMs: string[]) => Promise<SeriesRow[]>,
  ): Promise<Buffer[]> {
    const cut = groupByPeriod(
      summary.cut === null
        ? []
        : ((JSON.parse(summary.cut) as string[][]).map(([periodStartMs, type, version, counts]) => ({
            periodStartMs,
            type,
            version,
            counts,
          })) as SeriesRow[]),
    );
    const parts: Buffer[] = [];
    let whole: Buffer | undefined;
    let wholeStartMs = Number.POSITIVE_INFINITY;
    const { starts, types, versions } = summary;
    if (starts !== null && types !== null && versions !== null) {
      wholeStartMs = Number.parseInt(starts, 10); // up to the first comma
      whole = await this.#whole({ starts, types, versions }, range, fetchCounts);
    }
    for (const group of cut) {
      const periodMs = Number((group[0] as SeriesRow).periodStartMs);
      if (whole !== undefined && periodMs > wholeStartMs) {
        parts.push(whole);
        whole = undefined;
      }
      parts.push(renderPeriod(group, range, periodMs));
    }
    if (whole !== undefined) parts.push(whole);
    const chunks: Buffer[] = [openBracket];
    for (const part of parts) {
      if (part.length === 0) continue;
      if (chunks.length > 1) chunks.push(comma);
      chunks.push(part);
    }
    chunks.push(closeBracket);
    return chunks;
  }

  /** The whole periods of an answer, rendered and joined: kept, or made of kept and fetched periods. */
  async #whole(
    summary: { starts: string; types: string; versions: string },
    range: StatsRange,
    fetchCounts: (periodStartsMs: string[]) => Promise<SeriesRow[]>,
  ): Promise<Buffer> {
    const spanKey = `${range.scope}|${range.bucket}|${summary.versions}`;
    const kept = this.#spans.get(spanKey);
    if (kept) return kept;

    const starts = summary.starts.split(',');
    const types = JSON.parse(summary.types) as string[];
    const versions = summary.versions.split(',');
    const index: SeriesVersion[] = starts.map((periodStartMs, i) => ({
      periodStartMs,
      type: types[i] as string,
      version: versions[i] as string,
    }));
    const groups = groupByPeriod(index);
    const json: (Buffer | undefined)[] = new Array(groups.length);
    const missing: number[] = [];
    for (let p = 0; p < groups.length; p++) {
      const group = groups[p] as SeriesVersion[];
      const entry = this.#periods
        .get(`${range.scope}|${range.bucket}|${joined(group, 'type')}`)
        ?.get((group[0] as SeriesVersion).periodStartMs);
      if (entry && entry.versions === joined(group, 'version')) json[p] = entry.json;
      else missing.push(p);
    }
    if (missing.length > 0) {
      const fetched = groupByPeriod(
        await fetchCounts(
          missing.map((p) => ((groups[p] as SeriesVersion[])[0] as SeriesVersion).periodStartMs),
        ),
      );
      const byStart = new Map(fetched.map((group) => [(group[0] as SeriesRow).periodStartMs, group]));
      for (const p of missing) {
        const periodStartMs = ((groups[p] as SeriesVersion[])[0] as SeriesVersion).periodStartMs;
        const group = byStart.get(periodStartMs) ?? []; // gone since the summary was read: retention
        json[p] = renderPeriod(group, range, Number(periodStartMs));
        if (group.length > 0) this.#keepPeriod(range, group, json[p] as Buffer);
      }
    }
    const pieces: Buffer[] = [];
    for (const part of json) {
      if (!part || part.length === 0) continue;
      if (pieces.length > 0) pieces.push(comma);
      pieces.push(part);
    }
    const span = Buffer.concat(pieces);
    // Kept under the versions the summary read. A period fetched after a newer write renders that
    // write: such a span is newer than its key says, never older, and later summaries name the newer
    // versions anyway.
    if (
      !this.#spans.has(spanKey) &&
      this.#keep(span.length + spanKey.length, () => this.#spans.delete(spanKey))
    ) {
      this.#spans.set(spanKey, span);
    }
    return span;
  }

  #keepPeriod(range: StatsRange, group: SeriesRow[], json: Buffer): void {
    const outer = `${range.scope}|${range.bucket}|${joined(group, 'type')}`;
    let periods = this.#periods.get(outer);
    if (!periods) {
      periods = new Map();
      this.#periods.set(outer, periods);
    }
    const periodStartMs = (group[0] as SeriesRow).periodStartMs;
    const previous = periods.get(periodStartMs);
    if (previous) this.#release(previous.kept);
    const map = periods;
    let entry: { versions: string; json: Buffer; kept: Kept } | undefined;
    const kept = this.#keep(json.length, () => {
      if (entry !== undefined && map.get(periodStartMs) === entry) map.delete(periodStartMs);
    });
    if (!kept) return;
    entry = { versions: joined(group, 'version'), json, kept };
    periods.set(periodStartMs, entry);
  }

  /** Counts `bytes` as kept, letting the oldest kept things go past the limit; undefined if too big. */
  #keep(bytes: number, forget: () => void): Kept | undefined {
    if (bytes > this.#maxCachedBytes) return undefined;
    const kept = { bytes, forget };
    this.#order.push(kept);
    this.#cachedBytes += bytes;
    while (this.#cachedBytes > this.#maxCachedBytes) {
      const oldest = this.#order.shift();
      if (!oldest) break;
      this.#release(oldest);
    }
    return kept;
  }

  #release(kept: Kept): void {
    kept.forget();
    this.#cachedBytes -= kept.bytes;
    kept.bytes = 0;
    kept.forget = () => {};
  }
}

/** `rows` (sorted by period) split into one array per period. */
function groupByPeriod<Row extends SeriesVersion>(rows: Row[]): Row[][] {
  const groups: Row[][] = [];
  let group: Row[] | undefined;
  for (const row of rows) {
    if (group === undefined || (group[0] as Row).periodStartMs !== row.periodStartMs) {
      group = [];
      groups.push(group);
    }
    group.push(row);
  }
  return groups;
}

/** One field of a period's rows, joined: its types or its versions. */
const joined = (rows: SeriesVersion[], field: 'type' | 'version') => rows.map((r) => r[field]).join('|');

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
