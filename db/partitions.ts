import type { Knex } from 'knex';
import { addMonths, monthStart, utcMonth } from '../ingest/timestamp.ts';

export { addMonths, monthStart };

/**
 * `events` is partitioned by event time, one partition per UTC calendar month, so retention drops
 * whole months (a catalog change) instead of deleting rows one by one (dead tuples, vacuum, bloat).
 *
 * Partitions are made ahead of time by `maintainPartitions` (the migration and the chart's
 * maintenance CronJob), and on demand by the writer when an event's month has none yet (a backfill
 * of old events, or a CronJob that did not run): no event is ever refused for want of a partition.
 * The months an event may name are bounded by the acceptance contract's time window
 * (ingest/time-window.ts), so no client can make more than that many partitions.
 *
 * A partitioned table's unique keys must contain the partition key, so `(source, id)` is kept unique
 * across all months by `event_keys`, written in the same statement as the event. Retention removes a
 * month's keys together with its partition: idempotency holds for as long as an event is stored.
 */

/** Arbitrary but fixed: writers and the maintenance job creating partitions take turns on it. */
export const partitionLockKey = 4_815_162_343;

/**
 * Farthest month the writer may create, in months after the current one: the longest time window
 * (EVENT_TIME_MONTHS_AHEAD at most 24) plus the consumer's grace. Checked by the database itself.
 */
export const maxMonthsAheadOfNow = 25;

const partitionPattern = /^events_y(\d{4})m(\d{2})$/;

/** `events_y2026m11` for November 2026: sorts by month, and says which month it holds. */
export function partitionName(month: Date): string {
  const year = String(month.getUTCFullYear()).padStart(4, '0');
  return `events_y${year}m${String(month.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** A month's first instant as PostgreSQL reads it: also for year 10000, which `toISOString` writes `+010000`. */
function pgMonth(month: Date): string {
  const year = String(month.getUTCFullYear()).padStart(4, '0');
  return `${year}-${String(month.getUTCMonth() + 1).padStart(2, '0')}-01 00:00:00+00`;
}

function partitionMonth(name: string): Date | undefined {
  const match = partitionPattern.exec(name);
  return match ? utcMonth(Number(match[1]), Number(match[2]) - 1) : undefined;
}

/** True for the error PostgreSQL raises when a row's time falls in a month without a partition. */
export function isMissingPartition(err: unknown): boolean {
  return (
    err instanceof Error &&
    (err as { code?: string }).code === '23514' &&
    /no partition of relation "events" found/.test(err.message)
  );
}

/** Names of the partitions attached to `events`, oldest month first. */
export async function listPartitions(db: Knex): Promise<string[]> {
  const { rows } = await db.raw<{ rows: { name: string }[] }>(
    `select c.relname as name
     from pg_inherits i join pg_class c on c.oid = i.inhrelid
     where i.inhparent = 'events'::regclass
     order by 1`,
  );
  return rows.map((r) => r.name);
}

/** How many partitions `events` has: what a query without a time range locks, about six locks each. */
export async function countPartitions(db: Knex): Promise<number> {
  const { rows } = await db.raw<{ rows: { count: number }[] }>(
    `select count(*)::int as count from pg_inherits where inhparent = 'events'::regclass`,
  );
  return rows[0]?.count ?? 0;
}

export interface LockOptions {
  /**
   * How long to wait for the lock that attaching or dropping a partition takes on `events`, in ms.
   * It conflicts with every write: waiting longer than an instant would queue all writers behind it,
   * so the transaction gives up and is tried again instead. Default 2000.
   */
  lockTimeoutMs?: number;
  /** Attempts when that lock is not granted in time. Default 5. */
  attempts?: number;
}

/** Runs `work` in a transaction with a lock timeout, again while the lock is not granted in time. */
async function withShortLocks<T>(
  db: Knex,
  options: LockOptions,
  work: (trx: Knex.Transaction) => Promise<T>,
): Promise<T> {
  const attempts = options.attempts ?? 5;
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction(async (trx) => {
        await trx.raw(`set local lock_timeout = ${Math.trunc(options.lockTimeoutMs ?? 2_000)}`);
        return work(trx);
      });
    } catch (err) {
      if ((err as { code?: string }).code !== '55P03' || attempt >= attempts) throw err;
    }
  }
}

/** The months holding `times`, once each, by partition name in month order. */
function monthsByName(times: Iterable<Date>): [name: string, month: Date][] {
  const months = new Map<string, Date>();
  for (const time of times) {
    const month = monthStart(time);
    months.set(partitionName(month), month);
  }
  return [...months].sort(([a], [b]) => a.localeCompare(b));
}

/**
 * Creates the partitions of the months holding `times` that do not exist yet; returns their names.
 * Concurrent callers (pollers of several pods, the CronJob) queue on an advisory lock, and each
 * creates only what is still missing once it holds it.
 */
export async function createPartitions(
  db: Knex,
  times: Iterable<Date>,
  options: LockOptions = {},
): Promise<string[]> {
  const months = monthsByName(times);
  if (months.length === 0) return [];
  return withShortLocks(db, options, async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(?)', [partitionLockKey]);
    const existing = new Set(await listPartitions(trx));
    const created: string[] = [];
    for (const [name, month] of months) {
      if (existing.has(name)) continue;
      // DDL takes no bind parameters; the name and bounds are made here from a Date, never from input.
      await trx.raw(
        `create table ${name} partition of events
         for values from ('${pgMonth(month)}') to ('${pgMonth(addMonths(month, 1))}')`,
      );
      created.push(name);
    }
    return created;
  });
}

/**
 * What the writer runs when an event's month has no partition: each missing month through
 * `ingesta_create_event_partition` (migration 0006), which creates it as the owner of `events`, so
 * the app's own login needs no DDL rights. Returns the names created.
 */
export async function createPartitionsAsWriter(
  db: Knex,
  times: Iterable<Date>,
  options: LockOptions = {},
): Promise<string[]> {
  const months = monthsByName(times);
  if (months.length === 0) return [];
  return withShortLocks(db, options, async (trx) => {
    const created: string[] = [];
    for (const [name, month] of months) {
      const { rows } = await trx.raw<{ rows: { created: boolean }[] }>(
        'select ingesta_create_event_partition(?::timestamptz) as created',
        [pgMonth(month)],
      );
      if (rows[0]?.created) created.push(name);
    }
    return created;
  });
}

/**
 * Drops every partition whose month ended at or before `cutoff`, with its keys in `event_keys`, and
 * the rollups of those months, so /v1/stats never counts events that can no longer be read. Events
 * are kept at least until `cutoff`, at most one month longer. Safe to repeat: each partition goes in
 * one transaction (keys and table together), and the rollup delete is idempotent.
 */
export async function dropPartitionsBefore(
  db: Knex,
  cutoff: Date,
  options: LockOptions = {},
): Promise<string[]> {
  const boundary = monthStart(cutoff);
  const expired = (await listPartitions(db)).filter((name) => {
    const month = partitionMonth(name);
    return month !== undefined && addMonths(month, 1) <= boundary;
  });
  for (const name of expired) {
    // Keys and table in one transaction: a failure leaves both, and the next run starts over.
    await withShortLocks(db, options, async (trx) => {
      await trx.raw('set local statement_timeout = 0');
      await trx.raw(
        `delete from event_keys k using ${name} e
         where k.source = e.source and k.id = e.id and k.time = e.time`,
      );
      await trx.raw(`drop table ${name}`);
    });
  }
  // Series periods (hours, days, months) never straddle a month boundary.
  const before = pgMonth(boundary);
  await db.raw('delete from event_counts_by_source where period_start < ?', [before]);
  await db.raw('delete from event_counts where period_start < ?', [before]);
  // The bucket rows of releases before the series (migration 0004), kept until none writes them.
  await db.raw('delete from event_rollups where bucket_start < ?', [before]);
  await db.raw('delete from event_type_rollups where bucket_start < ?', [before]);
  return expired;
}

/** This month and the `monthsAhead` after it: the partitions kept ready ahead of writers. */
export function upcomingMonths(now: Date, monthsAhead = 3): Date[] {
  const current = monthStart(now);
  return Array.from({ length: monthsAhead + 1 }, (_, i) => addMonths(current, i));
}

export interface MaintenanceOptions {
  now?: Date;
  /** Months after the current one to create ahead. Default 3. */
  monthsAhead?: number;
  /** Days events are kept; 0 keeps them forever. */
  retentionDays: number;
  locks?: LockOptions;
}

export interface MaintenanceResult {
  created: string[];
  dropped: string[];
}

/** What the maintenance job runs: partitions for this month and the next ones, then retention. */
export async function maintainPartitions(db: Knex, options: MaintenanceOptions): Promise<MaintenanceResult> {
  const now = options.now ?? new Date();
  const created = await createPartitions(db, upcomingMonths(now, options.monthsAhead), options.locks);
  const dropped =
    options.retentionDays > 0
      ? await dropPartitionsBefore(
          db,
          new Date(now.getTime() - options.retentionDays * 86_400_000),
          options.locks,
        )
      : [];
  return { created, dropped };
}
