import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { filterSql, type ReplayFilter } from './filter.ts';

export type ReplayState = 'running' | 'following' | 'done' | 'cancelled' | 'failed';

export interface Replay {
  id: string;
  filter: ReplayFilter;
  /** An SQS queue URL or an SNS topic ARN, from the deployment's allow-list. */
  target: string;
  ratePerSec: number;
  /** Keep sending what is stored after the replay caught up, in the same order, without a gap. */
  follow: boolean;
  state: ReplayState;
  /** The store position of the last event sent, `tx:seq` (the replay continues after it). */
  position: string;
  eventsSent: number;
  /** Events the filter matched when the replay was made (the fixed filters; an upper bound with CESQL). */
  eventsMatched: number | undefined;
  error: string | undefined;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | undefined;
}

/** One stored event in the store's order. */
export interface ReplayRow {
  tx: string;
  seq: string;
  text: string;
  type: string;
  source: string;
  /** The producer's trace context, when it had one. */
  traceparent: string | null;
}

interface ReplayRecord {
  id: string;
  filter: ReplayFilter;
  target: string;
  rate_per_sec: number;
  follow: boolean;
  state: ReplayState;
  position_tx: string;
  position_seq: string;
  events_sent: string;
  events_matched: string | null;
  error: string | null;
  until_snapshot: string | null;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

const toReplay = (r: ReplayRecord): Replay => ({
  id: r.id,
  filter: r.filter,
  target: r.target,
  ratePerSec: r.rate_per_sec,
  follow: r.follow,
  state: r.state,
  position: `${r.position_tx}:${r.position_seq}`,
  eventsSent: Number(r.events_sent),
  eventsMatched: r.events_matched === null ? undefined : Number(r.events_matched),
  error: r.error ?? undefined,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
  finishedAt: r.finished_at?.toISOString(),
});

/** Work a worker holds under its lease: the replay and where to read from. */
export interface LeasedReplay {
  replay: Replay;
  positionTx: string;
  positionSeq: string;
  untilSnapshot: string | undefined;
}

/**
 * Replays and the reads they make, in PostgreSQL. The position is the store's own order `(tx, seq)`
 * (migration 0007): a read takes only rows of transactions older than every running one, so what
 * it returns is a prefix no later commit can add to, and a replay that follows never skips an event
 * that commits late. A lease on each replay row keeps two workers from sending the same replay;
 * every advance is fenced by it.
 */
export class ReplayStore {
  readonly #db: Knex;

  constructor(db: Knex) {
    this.#db = db;
  }

  /**
   * Counts what a filter matches now, up to `cap` rows read: by the index alone for the fixed
   * filters, and event by event when a CESQL expression (`matches`) must be applied.
   */
  async countMatching(
    filter: ReplayFilter,
    cap: number,
    matches?: (text: string) => boolean,
  ): Promise<number> {
    const { conditions, values } = filterSql(filter);
    const where = conditions.length > 0 ? `where ${conditions.join(' and ')}` : '';
    if (!matches) {
      const { rows } = await this.#db.raw<{ rows: { n: string }[] }>(
        `select count(*) as n from (select 1 from events ${where} limit ?) matched`,
        [...values, cap],
      );
      return Number(rows[0]?.n ?? 0);
    }
    const { rows } = await this.#db.raw<{ rows: { event: string }[] }>(
      `select event from events ${where} limit ?`,
      [...values, cap],
    );
    return rows.filter((r) => matches(r.event)).length;
  }

  async create(input: {
    filter: ReplayFilter;
    target: string;
    ratePerSec: number;
    follow: boolean;
    eventsMatched: number | undefined;
  }): Promise<Replay> {
    const { rows } = await this.#db.raw<{ rows: ReplayRecord[] }>(
      `insert into replays (id, filter, target, rate_per_sec, follow, state, until_snapshot, events_matched)
       values (?, ?::jsonb, ?, ?, ?, 'running', case when ? then null else pg_current_snapshot() end, ?)
       returning *`,
      [
        randomUUID(),
        JSON.stringify(input.filter),
        input.target,
        input.ratePerSec,
        input.follow,
        input.follow,
        input.eventsMatched ?? null,
      ],
    );
    return toReplay(rows[0] as ReplayRecord);
  }

  async get(id: string): Promise<Replay | undefined> {
    const { rows } = await this.#db.raw<{ rows: ReplayRecord[] }>('select * from replays where id = ?', [id]);
    return rows[0] ? toReplay(rows[0]) : undefined;
  }

  /** Cancels a replay that has not ended; returns it as it is now. */
  async cancel(id: string): Promise<Replay | undefined> {
    await this.#db.raw(
      `update replays set state = 'cancelled', finished_at = now(), updated_at = now()
       where id = ? and state in ('running', 'following')`,
      [id],
    );
    return this.get(id);
  }

  /**
   * Takes the lease of the oldest active replay nobody holds (or whose holder let it lapse, as a
   * pod that died does), for `leaseSec`, other than those the caller runs already. Undefined when
   * there is none.
   */
  async claim(
    owner: string,
    leaseSec: number,
    running: readonly string[] = [],
  ): Promise<LeasedReplay | undefined> {
    const { rows } = await this.#db.raw<{ rows: ReplayRecord[] }>(
      `update replays set lease_owner = ?, lease_until = now() + make_interval(secs => ?), updated_at = now()
       where id = (
         select id from replays
         where state in ('running', 'following') and (lease_until is null or lease_until < now() or lease_owner = ?)
           and id <> all(?::uuid[])
         order by created_at limit 1
         for update skip locked)
       returning *, until_snapshot::text as until_snapshot`,
      [owner, leaseSec, owner, `{${running.join(',')}}`],
    );
    const record = rows[0];
    if (!record) return undefined;
    return {
      replay: toReplay(record),
      positionTx: record.position_tx,
      positionSeq: record.position_seq,
      untilSnapshot: record.until_snapshot ?? undefined,
    };
  }

  /**
   * The next stored events after a position, in the store's order, of transactions that ended:
   * only `tx` below the oldest running transaction, so nothing can later appear before them. For a
   * replay without follow, only what its snapshot saw.
   */
  async read(leased: LeasedReplay, limit: number): Promise<{ rows: ReplayRow[]; caughtUp: boolean }> {
    const { conditions, values } = filterSql(leased.replay.filter);
    const until = leased.untilSnapshot === undefined ? '' : 'and pg_visible_in_snapshot(tx, ?::pg_snapshot)';
    const { rows } = await this.#db.raw<{ rows: (ReplayRow & { safe: string })[] }>(
      `select tx::text as tx, seq::text as seq, event as text, type, source, traceparent
       from events
       where (tx, seq) > (?::xid8, ?::bigint)
         and tx < pg_snapshot_xmin(pg_current_snapshot())
         ${until}
         ${conditions.map((c) => `and ${c}`).join(' ')}
       -- Qualified: bare names would order by the text columns of the select list.
       order by events.tx, events.seq
       limit ?`,
      [
        leased.positionTx,
        leased.positionSeq,
        ...(leased.untilSnapshot === undefined ? [] : [leased.untilSnapshot]),
        ...values,
        limit,
      ],
    );
    if (rows.length > 0 || leased.untilSnapshot === undefined) return { rows, caughtUp: rows.length === 0 };
    // Done once every transaction the snapshot could not yet see has ended and nothing is left.
    const { rows: ended } = await this.#db.raw<{ rows: { ended: boolean }[] }>(
      'select pg_snapshot_xmin(pg_current_snapshot()) >= pg_snapshot_xmax(?::pg_snapshot) as ended',
      [leased.untilSnapshot],
    );
    return { rows, caughtUp: ended[0]?.ended === true };
  }

  /**
   * Records that events up to a position were sent, and renews the lease. False when the lease is
   * no longer this worker's or the replay was cancelled: the worker stops.
   */
  async advance(
    leased: LeasedReplay,
    owner: string,
    leaseSec: number,
    last: ReplayRow,
    sent: number,
  ): Promise<boolean> {
    const { rowCount } = await this.#db.raw<{ rowCount: number }>(
      `update replays set position_tx = ?::xid8, position_seq = ?::bigint, events_sent = events_sent + ?,
         lease_until = now() + make_interval(secs => ?), updated_at = now()
       where id = ? and lease_owner = ? and state in ('running', 'following')`,
      [last.tx, last.seq, sent, leaseSec, leased.replay.id, owner],
    );
    if (rowCount !== 1) return false;
    leased.positionTx = last.tx;
    leased.positionSeq = last.seq;
    return true;
  }

  /** Renews the lease while a replay waits (caught up, following). False as for `advance`. */
  async renew(leased: LeasedReplay, owner: string, leaseSec: number, state: ReplayState): Promise<boolean> {
    const { rowCount } = await this.#db.raw<{ rowCount: number }>(
      `update replays set lease_until = now() + make_interval(secs => ?), state = ?, updated_at = now()
       where id = ? and lease_owner = ? and state in ('running', 'following')`,
      [leaseSec, state, leased.replay.id, owner],
    );
    return rowCount === 1;
  }

  async finish(leased: LeasedReplay, owner: string, state: 'done' | 'failed', error?: string): Promise<void> {
    await this.#db.raw(
      `update replays set state = ?, error = ?, finished_at = now(), updated_at = now(), lease_owner = null, lease_until = null
       where id = ? and lease_owner = ? and state in ('running', 'following')`,
      [state, error ?? null, leased.replay.id, owner],
    );
  }

  /** Lets a lease go at once (a worker stopping cleanly), so another pod takes over without waiting. */
  async release(leased: LeasedReplay, owner: string): Promise<void> {
    await this.#db.raw(
      'update replays set lease_owner = null, lease_until = null where id = ? and lease_owner = ?',
      [leased.replay.id, owner],
    );
  }
}
