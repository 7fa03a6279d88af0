import type { Knex } from 'knex';

/**
 * Replays (replay/): each event records the transaction that stored it (`tx`), and `(tx, seq)` is
 * the store's own order for replays. Ordering by `seq` alone would not do: `seq` is taken at INSERT
 * and a later `seq` can commit first, so a reader walking `seq` would step past an earlier one still
 * in flight and miss it for ever. A reader that takes only rows with `tx` below the oldest running
 * transaction (`pg_snapshot_xmin`) sees a prefix of `(tx, seq)` that no later commit can extend
 * (docs/adr/0006-replay-position.md). Existing rows share the migration's `tx`, in `seq` order.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('lock table events in exclusive mode');
  await knex.raw('alter table events add column tx xid8 not null default pg_current_xact_id()');
  // The producer's trace context, so a replayed event's trace links back to where it came from.
  await knex.raw('alter table events add column traceparent text');
  await knex.raw('create index events_tx_seq_idx on events (tx, seq)');
  await knex.raw(`
    create table replays (
      id uuid primary key,
      filter jsonb not null,
      target text not null,
      rate_per_sec integer not null check (rate_per_sec > 0),
      follow boolean not null,
      -- What "now" was when a replay without follow was made: it ends with what was stored then.
      until_snapshot pg_snapshot,
      state text not null check (state in ('running', 'following', 'done', 'cancelled', 'failed')),
      position_tx xid8 not null default '0',
      position_seq bigint not null default 0,
      events_sent bigint not null default 0,
      events_matched bigint,
      error text,
      lease_owner text,
      lease_until timestamptz,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      finished_at timestamptz
    )`);
  await knex.raw(
    `create index replays_active_idx on replays (created_at) where state in ('running', 'following')`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table replays');
  await knex.raw('drop index events_tx_seq_idx');
  await knex.raw('alter table events drop column tx, drop column traceparent');
}
