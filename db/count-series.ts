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
/** The widths /v1/stats counts in. */
export type BucketWidth = 'minute' | 'hour' | 'day';

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
  /**
   * Where the versions come from: the version sequence's oid and the server's start time. A sequence
   * made again (migration 0004 down, then up) or another server (a failover, a restore) may hand
   * out versions already seen, so nothing kept under another epoch is trusted.
   */
  epoch: string;
}

export interface StatsRange {
  bucket: BucketWidth;
  /** Buckets start at or after this… */
  fromMs: number;
  /** …and before this. */
  toMs: number;
  /** What else selected the rows (table, source filter): rendered periods are kept per scope. */
  scope: string;
  /** The type filter, or none: answers are kept per scope and type filter. */
  types: string;
}

const openBracket = Buffer.from('[');
const comma = Buffer.from(',');
const closeBracket = Buffer.from(']');

export interface SeriesJsonOptions {
  /** Most bytes of rendered JSON kept for the next answers. Default 16 MiB. */
  maxCachedBytes?: number;
}

/** A place in the first-in-first-out order of what is kept. */
interface Kept {
  bytes: number;
  forget(): void;
}

/** JSON kept, with the versions of the rows it was rendered from. */
interface Rendered {
  versions: string;
  json: Buffer;
  kept: Kept;
}

/**
 * Renders series as the JSON array of stats buckets, `[{"start":…,"type":…,"count":…}, …]`,
 * straight to UTF-8, with no object per bucket. Versions say whether a rendering still holds: every
 * write gives a series row a new version from one sequence, so a list of versions names exactly
 * which rows, in which state, a rendering was made of. Two things are kept, first in first out
 * within `maxCachedBytes`, each in one place that a newer rendering of the same thing takes over:
 *
 * - the whole periods of an answer, joined, per scope, width, type filter and first and last
 *   period: a dashboard asking for the last 30 days again gets them back as one buffer, with only
 *   the periods its range cuts (the first and the last) rendered anew;
 * - each whole period, per scope, width, types and period: when the whole periods of an answer
 *   change (the hour rolls over, a late event lands), only periods not kept are fetched and rendered.
 *
 * An answer is never older than the query that produced it.
 */
export class SeriesJson {
  readonly #maxCachedBytes: number;
  readonly #spans = new Map<string, Rendered>();
  /** By scope, width and the types of the period's rows, then by period start. */
  readonly #periods = new Map<string, Map<string, Rendered>>();
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
      const first = starts.slice(0, starts.indexOf(',') >>> 0);
      wholeStartMs = Number(first);
      const scope = `${summary.epoch}|${range.scope}|${range.bucket}`;
      whole = await this.#whole(scope, first, { starts, types, versions }, range, fetchCounts);
    }
    for (const group of cut) {
      const periodMs = Number(periodStart(group));
      if (whole !== undefined && periodMs > wholeStartMs) {
        parts.push(whole);
        whole = undefined;
      }
      parts.push(renderPeriod(group, range, periodMs));
    }
    if (whole !== undefined) parts.push(whole);
    return [openBracket, ...commaSeparated(parts), closeBracket];
  }

  /** The whole periods of an answer, rendered and joined: kept, or made of kept and fetched periods. */
  async #whole(
    scope: string,
    first: string,
    lists: { starts: string; types: string; versions: string },
    range: StatsRange,
    fetchCounts: (periodStartsMs: string[]) => Promise<SeriesRow[]>,
  ): Promise<Buffer> {
    const last = lists.starts.slice(lists.starts.lastIndexOf(',') + 1);
    const spanKey = `${scope}|${range.types}|${first}-${last}`;
    const span = this.#spans.get(spanKey);
    if (span && span.versions === lists.versions) return span.json;

    const starts = lists.starts.split(',');
    const types = JSON.parse(lists.types) as string[];
    const versions = lists.versions.split(',');
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
      const kept = this.#periods.get(`${scope}|${joined(group, 'type')}`)?.get(periodStart(group));
      if (kept && kept.versions === joined(group, 'version')) json[p] = kept.json;
      else missing.push(p);
    }
    if (missing.length > 0) {
      const fetched = groupByPeriod(
        await fetchCounts(missing.map((p) => periodStart(groups[p] as SeriesVersion[]))),
      );
      const byStart = new Map(fetched.map((group) => [periodStart(group), group]));
      for (const p of missing) {
        const periodStartMs = periodStart(groups[p] as SeriesVersion[]);
        const group = byStart.get(periodStartMs) ?? []; // gone since the summary was read: retention
        json[p] = renderPeriod(group, range, Number(periodStartMs));
        if (group.length > 0) this.#keepPeriod(scope, group, json[p] as Buffer);
      }
    }
    const joinedJson = Buffer.concat(commaSeparated(json as Buffer[]));
    // Kept under the versions the summary read. A period fetched after a newer write renders that
    // write: such a span is newer than its versions say, never older, and later summaries name the
    // newer versions anyway.
    this.#store(this.#spans, spanKey, lists.versions, joinedJson, joinedJson.length + lists.versions.length);
    return joinedJson;
  }

  #keepPeriod(scope: string, group: SeriesRow[], json: Buffer): void {
    const outer = `${scope}|${joined(group, 'type')}`;
    let periods = this.#periods.get(outer);
    if (!periods) {
      periods = new Map();
      this.#periods.set(outer, periods);
    }
    const versions = joined(group, 'version');
    this.#store(periods, periodStart(group), versions, json, json.length, () => this.#periods.delete(outer));
  }

  /**
   * Keeps `json` under `key` of `map`: in the place a rendering of the same key already holds, or
   * last. Lets the oldest kept things go past the limit. `emptied` runs when `map` is left empty.
   */
  #store(
    map: Map<string, Rendered>,
    key: string,
    versions: string,
    json: Buffer,
    bytes: number,
    emptied?: () => void,
  ): void {
    const previous = map.get(key);
    if (bytes > this.#maxCachedBytes) {
      if (previous) {
        previous.kept.forget();
        this.#cachedBytes -= previous.kept.bytes;
        this.#order.splice(this.#order.indexOf(previous.kept), 1);
      } else if (map.size === 0) {
        emptied?.();
      }
      return;
    }
    let kept = previous?.kept;
    if (kept) {
      this.#cachedBytes += bytes - kept.bytes;
      kept.bytes = bytes;
    } else {
      kept = {
        bytes,
        forget: () => {
          map.delete(key);
          if (map.size === 0) emptied?.();
        },
      };
      this.#order.push(kept);
      this.#cachedBytes += bytes;
    }
    map.set(key, { versions, json, kept });
    while (this.#cachedBytes > this.#maxCachedBytes) {
      const oldest = this.#order.shift() as Kept; // something is kept: the bytes are over the limit
      oldest.forget();
      this.#cachedBytes -= oldest.bytes;
    }
  }

  /** Bytes and places kept, for tests. */
  get kept(): { bytes: number; places: number } {
    return { bytes: this.#cachedBytes, places: this.#order.length };
  }
}

/** `rows` (sorted by period) split into one array per period. */
function groupByPeriod<Row extends SeriesVersion>(rows: Row[]): Row[][] {
  const groups: Row[][] = [];
  let group: Row[] | undefined;
  for (const row of rows) {
    if (group === undefined || periodStart(group) !== row.periodStartMs) {
      group = [];
      groups.push(group);
    }
    group.push(row);
  }
  return groups;
}

/** Where the period of a group of rows (one period's) starts. */
const periodStart = (group: SeriesVersion[]) => (group[0] as SeriesVersion).periodStartMs;

/** The non-empty parts with a comma between each two: JSON array elements. */
function commaSeparated(parts: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const part of parts) {
    if (part.length === 0) continue;
    if (out.length > 0) out.push(comma);
    out.push(part);
  }
  return out;
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
