import type { Knex } from 'knex';
import { parseTimestamp } from '../ingest/timestamp.ts';
import {
  addedCounts,
  addToSeries,
  type BucketWidth,
  bucketBounds,
  periodEndSql,
  periodOf,
  SeriesJson,
  type SeriesJsonOptions,
  type SeriesRow,
  type SeriesSummary,
  slotCounts,
} from './count-series.ts';
import { type Database, isDatabaseUnavailable } from './database.ts';
import { createPartitionsAsWriter, isMissingPartition } from './partitions.ts';

/** An event to store, as the acceptance contract (ingest/) gave it. */
export interface NewEvent {
  event: {
    source: string;
    id: string;
    type: string;
    subject?: string /** JSON text as sent. */;
    text: string;
  };
  /** The time it is filed under: its own, or when the API accepted it (`timeDefaulted`). */
  time: { normalized: string; epochMs: number };
  timeDefaulted: boolean;
  acceptedAtMs: number;
  /** The producer's W3C trace context, if it had one. */
  traceparent?: string;
}

/** A stored event: its JSON text as sent, and ingesta's own metadata, kept apart from it. */
export interface StoredEvent {
  /** The event's JSON text, as its producer sent it (insignificant whitespace removed). */
  text: string;
  metadata: EventMetadata;
}

export interface EventMetadata {
  /** The time the store files, orders and counts the event under (RFC 3339, UTC, µs). */
  time: string;
  /** True when the event had no `time` of its own and `time` is when the API accepted it. */
  timeDefaulted: boolean;
  /** When the API accepted it. */
  acceptedAt: string;
  /** When the consumer stored it. */
  storedAt: string;
}

export interface EventFilter {
  type?: string;
  source?: string;
  subject?: string;
  /** Inclusive, ISO 8601. */
  from?: string;
  /** Exclusive, ISO 8601. */
  to?: string;
}

export type { BucketWidth } from './count-series.ts';

export interface StatsQuery {
  from: string;
  to: string;
  bucket: BucketWidth;
  type?: string;
  source?: string;
}

export class InvalidCursorError extends Error {
  constructor() {
    super('cursor is not one this API issued');
    this.name = 'InvalidCursorError';
  }
}

const rfc3339 = (column: string) => `to_char(${column}, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** The columns every read returns; timestamps rendered in UTC with microseconds, as stored. */
const selectColumns = `seq, event, time_defaulted, ${rfc3339('time')} as time,
  ${rfc3339('accepted_at')} as accepted_at, ${rfc3339('stored_at')} as stored_at`;

interface EventRow {
  seq: string;
  event: string;
  time_defaulted: boolean;
  time: string;
  accepted_at: string;
  stored_at: string;
}

const toStoredEvent = (row: EventRow): StoredEvent => ({
  text: row.event,
  metadata: {
    time: row.time,
    timeDefaulted: row.time_defaulted,
    acceptedAt: row.accepted_at,
    storedAt: row.stored_at,
  },
});

/** Keyset cursor: the (time, seq) of the last row served, opaque to clients. */
const encodeCursor = (row: EventRow) =>
  Buffer.from(JSON.stringify([row.time, row.seq])).toString('base64url');

function decodeCursor(cursor: string): [string, string] {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'string' &&
      typeof value[1] === 'string' &&
      /^\d{1,18}$/.test(value[1])
    ) {
      const time = parseTimestamp(value[0]);
      if (time.ok) return [time.value.normalized, value[1]];
    }
  } catch {
    // fall through
  }
  throw new InvalidCursorError();
}

export interface InsertResult {
  /** (source, id) of the rows this call inserted; the rest were already stored. */
  inserted: { source: string; id: string }[];
}

export interface EventRepositoryOptions {
  /**
   * INSERT statements in flight at once; insertBatch calls arriving while they run wait and then go
   * together in one statement. Default 2.
   */
  maxConcurrentInserts?: number;
  /** Most rows one merged statement carries (a single call is never split). Default 100. */
  maxRowsPerInsert?: number;
  /** How /v1/stats answers are rendered and how much of them is kept (db/count-series.ts). */
  statsJson?: SeriesJsonOptions;
}

interface PendingInsert {
  batch: NewEvent[];
  resolve(result: InsertResult): void;
  reject(err: unknown): void;
}

const eventKey = (source: string, id: string) => `${source}\u0000${id}`;

/**
 * The two /v1/stats statements for one shape (source filter or not, type filter or not, width).
 * The summary: one row naming the series rows of the periods wholly inside the range by key and
 * version, and carrying the rows of the periods the range cuts (the first and the last, rendered
 * every time) with their counts (`SeriesSummary`). And the counts of given periods. Parameters: the
 * filters, then the period name, `from`, `to`, and the bounds in whole milliseconds (the summary);
 * or the filters and an array of period starts (the counts). Built once per shape, and prepared.
 */
const statsSql = (() => {
  const built = new Map<string, { summary: PreparedSql; counts: PreparedSql }>();
  return (bySource: boolean, hasType: boolean, bucket: BucketWidth) => {
    const shape = `${bySource}/${hasType}/${bucket}`;
    const known = built.get(shape);
    if (known) return known;
    const filters = ['bucket_width = $1'];
    if (bySource) filters.push(`source = $${filters.length + 1}`);
    if (hasType) filters.push(`type = $${filters.length + 1}`);
    const n = filters.length;
    // As text: these are compared and printed, never computed on, so pg need not parse them as int8;
    // date_part is float8 (exact for whole seconds), cheaper than extract's numeric.
    const periodStartMs = `(date_part('epoch', period_start) * 1000)::int8::text`;
    const from = `from ${bySource ? 'event_counts_by_source' : 'event_counts'} where ${filters.join(' and ')}`;
    const inOrder = 'order by period_start, type';
    const summary = `select
        string_agg(ms, ',' ${inOrder}) filter (where not cut) as starts,
        (json_agg(type ${inOrder}) filter (where not cut))::text as types,
        string_agg(version::text, ',' ${inOrder}) filter (where not cut) as versions,
        (json_agg(json_build_array(ms, type, version::text, counts::text) ${inOrder}) filter (where cut))::text as cut,
        to_regclass('event_counts_version')::oid::text || '@' || pg_postmaster_start_time()::text as epoch
      from (
        select period_start, type, version, counts, ${periodStartMs} as ms,
          period_start < $${n + 4}::timestamptz or ${periodEndSql(bucket)} > $${n + 5}::timestamptz as cut
        ${from} and period_start >= date_trunc($${n + 1}, $${n + 2}::timestamptz, 'UTC')
          and period_start < $${n + 3}::timestamptz
      ) in_range`;
    const counts = `select ${periodStartMs} as "periodStartMs", type, version::text as version, counts::text as counts
      ${from} and period_start = any($${n + 1}::timestamptz[])
      ${inOrder}`;
    const name = (kind: string) => `ingesta_stats_${kind}_${shape.replaceAll('/', '_')}`;
    const statements = {
      summary: { name: name('summary'), text: summary },
      counts: { name: name('counts'), text: counts },
    };
    built.set(shape, statements);
    return statements;
  };
})();

interface PreparedSql {
  name: string;
  text: string;
}

/**
 * One statement per batch, parameters $1–$10 the columns as arrays. Arrays keep the statement's
 * shape (and plan) the same whatever the batch size. Events and series rows are written in key
 * order, so concurrent statements (a redelivered event in two batches, one hot series row) take
 * their locks in the same order and cannot deadlock.
 */
const insertBatchSql = `with incoming as (
    select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[],
                    $7::boolean[], $8::timestamptz[], $9::text[])
      as t(source, id, type, subject, time, event, time_defaulted, accepted_at, traceparent)
  ),
  first_seen as (
    insert into event_keys (source, id, time)
    select source, id, time
    from incoming
    order by source, id
    on conflict (source, id) do nothing
    returning source, id, time
  ),
  inserted as (
    insert into events (source, id, type, subject, time, event, time_defaulted, accepted_at, traceparent)
    select distinct on (source, id)
      source, id, type, subject, time, event, time_defaulted, accepted_at, traceparent
    from incoming join first_seen using (source, id, time)
    order by source, id
    returning source, id, type, time
  ),
  by_source as (${slotCounts('inserted')}),
  rolled as (
    insert into event_counts_by_source (bucket_width, source, type, period_start, counts)
    ${addedCounts('by_source', ['source', 'type'])}
    on conflict (bucket_width, source, type, period_start)
      do update set ${addToSeries('event_counts_by_source')}
  ),
  rolled_by_type as (
    insert into event_counts (bucket_width, type, period_start, counts)
    ${addedCounts('by_source', ['type'])}
    on conflict (bucket_width, type, period_start)
      do update set ${addToSeries('event_counts')}
  )
  select source, id from inserted`;

/**
 * Data access for the event store. Writes are one statement per batch (atomic on its own): a
 * multi-row INSERT … ON CONFLICT DO NOTHING into `event_keys` decides which events are new (the
 * first time their (source, id) is seen, whatever their `time`); only those go into the monthly
 * partitions of `events` and feed the count series upserts (per source, and per type across
 * sources), so the series count only rows actually inserted. An event whose month has no partition yet gets one,
 * made by the migration role's function (db/partitions.ts `createPartitionsAsWriter`), and its statement runs again.
 *
 * Concurrent insertBatch calls (the consumer's pollers) share statements: at most
 * `maxConcurrentInserts` run at once and the calls that arrive meanwhile are merged into the next
 * one. Fewer, larger transactions lock each hot series row once per statement instead of once per
 * batch, which is what limits concurrent writers of one type. A call alone is never delayed. Each
 * call still settles on its own batch: it learns which of its rows were inserted, and a statement
 * PostgreSQL refuses is retried call by call, so a refused row fails only the call that holds it.
 */
export class EventRepository {
  readonly #db: Database;
  readonly #maxConcurrentInserts: number;
  readonly #maxRowsPerInsert: number;
  readonly #waiting: PendingInsert[] = [];
  #insertsInFlight = 0;
  readonly #statsJson: SeriesJson;

  constructor(db: Database, options: EventRepositoryOptions = {}) {
    this.#db = db;
    this.#statsJson = new SeriesJson(options.statsJson);
    this.#maxConcurrentInserts = options.maxConcurrentInserts ?? 2;
    this.#maxRowsPerInsert = options.maxRowsPerInsert ?? 100;
  }

  /** Stores a batch once COMMIT returns; resolves with the rows that were new. */
  insertBatch(batch: NewEvent[]): Promise<InsertResult> {
    if (batch.length === 0) return Promise.resolve({ inserted: [] });
    return new Promise((resolve, reject) => {
      this.#waiting.push({ batch, resolve, reject });
      this.#startInserts();
    });
  }

  #startInserts(): void {
    while (this.#insertsInFlight < this.#maxConcurrentInserts && this.#waiting.length > 0) {
      const group: PendingInsert[] = [];
      let rows = 0;
      while (this.#waiting.length > 0) {
        const next = this.#waiting[0] as PendingInsert;
        if (group.length > 0 && rows + next.batch.length > this.#maxRowsPerInsert) break;
        group.push(next);
        rows += next.batch.length;
        this.#waiting.shift();
      }
      this.#insertsInFlight++;
      void this.#insertGroup(group).finally(() => {
        this.#insertsInFlight--;
        this.#startInserts();
      });
    }
  }

  async #insertGroup(group: PendingInsert[]): Promise<void> {
    let inserted: { source: string; id: string }[];
    try {
      ({ inserted } = await this.#insert(group.flatMap((g) => g.batch)));
    } catch (err) {
      if (group.length === 1 || isDatabaseUnavailable(err)) {
        for (const g of group) g.reject(err);
        return;
      }
      // PostgreSQL refused a row: each call alone, so the error reaches only the batch that holds it.
      await Promise.all(
        group.map((g) =>
          this.#insert(g.batch).then(
            (result) => g.resolve(result),
            (e: unknown) => g.reject(e),
          ),
        ),
      );
      return;
    }
    // Each new row is credited to the first call holding it: a duplicate across calls counts once.
    const unclaimed = new Set(inserted.map((r) => eventKey(r.source, r.id)));
    for (const g of group) {
      const mine: { source: string; id: string }[] = [];
      for (const { event } of g.batch) {
        const key = eventKey(event.source, event.id);
        if (unclaimed.delete(key)) mine.push({ source: event.source, id: event.id });
      }
      g.resolve({ inserted: mine });
    }
  }

  async #insert(batch: NewEvent[]): Promise<InsertResult> {
    try {
      return await this.#write(batch);
    } catch (err) {
      if (!isMissingPartition(err)) throw err;
      // Two short tries: a batch must end well inside its visibility timeout.
      await createPartitionsAsWriter(
        this.#db,
        batch.map(({ time }) => new Date(time.epochMs)),
        { attempts: 2 },
      );
      return this.#write(batch);
    }
  }

  async #write(batch: NewEvent[]): Promise<InsertResult> {
    const columns = {
      source: [] as string[],
      id: [] as string[],
      type: [] as string[],
      subject: [] as (string | null)[],
      time: [] as string[],
      text: [] as string[],
      timeDefaulted: [] as boolean[],
      acceptedAt: [] as string[],
      traceparent: [] as (string | null)[],
    };
    for (const { event, time, timeDefaulted, acceptedAtMs, traceparent } of batch) {
      columns.source.push(event.source);
      columns.id.push(event.id);
      columns.type.push(event.type);
      columns.subject.push(event.subject ?? null);
      columns.time.push(time.normalized);
      columns.text.push(event.text);
      columns.timeDefaulted.push(timeDefaulted);
      columns.acceptedAt.push(new Date(acceptedAtMs).toISOString());
      columns.traceparent.push(traceparent ?? null);
    }
    const rows = await this.#prepared<{ source: string; id: string }>(
      'ingesta_insert_batch_v3',
      insertBatchSql,
      [
        columns.source,
        columns.id,
        columns.type,
        columns.subject,
        columns.time,
        columns.text,
        columns.timeDefaulted,
        columns.acceptedAt,
        columns.traceparent,
      ],
    );
    return { inserted: rows };
  }

  /**
   * Runs `text` as a named prepared statement on a connection of the pool: PostgreSQL plans it on
   * the first calls of each connection and then reuses a generic plan, instead of planning the
   * insert's eight CTEs on every call.
   */
  async #prepared<Row>(name: string, text: string, values: unknown[]): Promise<Row[]> {
    const client = this.#db.client as Knex.Client;
    const connection = (await client.acquireConnection()) as {
      query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: Row[] }>;
    };
    try {
      return (await connection.query({ name, text, values })).rows;
    } finally {
      await client.releaseConnection(connection);
    }
  }

  async get(source: string, id: string): Promise<StoredEvent | undefined> {
    // The key's time names the one partition to look in (pruned at run time), not every month's.
    const row = await this.#db('events')
      .select(this.#db.raw(selectColumns))
      .where({ source, id })
      .where('time', '=', this.#db('event_keys').select('time').where({ source, id }) as never)
      .first();
    return row ? toStoredEvent(row as unknown as EventRow) : undefined;
  }

  /** Newest first by (time, seq); `limit + 1` rows tell whether another page exists. */
  async list(
    filter: EventFilter,
    limit: number,
    cursor?: string,
  ): Promise<{ items: StoredEvent[]; nextCursor?: string }> {
    const query = this.#db('events').select(this.#db.raw(selectColumns));
    if (filter.type !== undefined) query.where('type', filter.type);
    if (filter.source !== undefined) query.where('source', filter.source);
    if (filter.subject !== undefined) query.where('subject', filter.subject);
    if (filter.from !== undefined) query.where('time', '>=', filter.from);
    if (filter.to !== undefined) query.where('time', '<', filter.to);
    if (cursor !== undefined) {
      const [time, seq] = decodeCursor(cursor);
      query.whereRaw('(time, seq) < (?::timestamptz, ?::bigint)', [time, seq]);
    }
    // Qualified: a bare `time` in ORDER BY would mean the text column the select list renders under
    // that name, which no index serves (a sort of every matching row instead of an index walk).
    const rows = (await query
      .orderBy([
        { column: 'events.time', order: 'desc' },
        { column: 'events.seq', order: 'desc' },
      ])
      .limit(limit + 1)) as unknown as EventRow[];
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      items: page.map(toStoredEvent),
      ...(rows.length > limit && last ? { nextCursor: encodeCursor(last) } : {}),
    };
  }

  /**
   * Counts per bucket and type, as the chunks of the UTF-8 JSON array /v1/stats answers with, read from the count
   * series (db/count-series.ts): cost grows with periods, not events. Without a source filter the
   * per-type series answer; with one, the per-source series do.
   */
  async statsJson(query: StatsQuery): Promise<Buffer[]> {
    const bySource = query.source !== undefined;
    const hasType = query.type !== undefined;
    const filters = [query.bucket, ...(bySource ? [query.source] : []), ...(hasType ? [query.type] : [])];
    const { fromMs, toMs } = bucketBounds(query.bucket, query.from, query.to);
    const sql = statsSql(bySource, hasType, query.bucket);
    const [summary] = await this.#prepared<SeriesSummary>(sql.summary.name, sql.summary.text, [
      ...filters,
      periodOf(query.bucket),
      query.from,
      query.to,
      new Date(fromMs).toISOString(),
      new Date(toMs).toISOString(),
    ]);
    const range = {
      bucket: query.bucket,
      fromMs,
      toMs,
      scope: bySource ? `source ${query.source}` : 'all sources',
      types: hasType ? `type ${query.type}` : 'all types',
    };
    return this.#statsJson.render(summary as SeriesSummary, range, (periods) =>
      this.#prepared<SeriesRow>(sql.counts.name, sql.counts.text, [
        ...filters,
        periods.map((ms) => new Date(Number(ms)).toISOString()),
      ]),
    );
  }

  async ping(): Promise<void> {
    await this.#db.raw('select 1');
  }

  /**
   * Resolves when an INSERT of a batch would not wait on a lock right now: takes, without waiting,
   * the lock an INSERT takes on each table it writes, then lets it go. Fails with 55P03 while a
   * migration (or anyone) holds a conflicting lock, where `ping()` would pass.
   */
  async probeWrites(): Promise<void> {
    await this.#db.transaction(async (trx) => {
      await trx.raw(
        'lock table event_keys, events, event_counts, event_counts_by_source in row exclusive mode nowait',
      );
    });
  }
}
