import type { Knex } from 'knex';
import { createPartitions, upcomingMonths } from '../partitions.ts';

const columns = `seq, source, id, type, subject, time, datacontenttype, dataschema, data, extensions,
  accepted_at, stored_at`;

const keysetIndexes = (table: string) => [
  `create index ${table}_time_idx on ${table} (time desc, seq desc)`,
  `create index ${table}_type_time_idx on ${table} (type, time desc, seq desc)`,
  `create index ${table}_subject_time_idx on ${table} (subject, time desc, seq desc)`,
  `create index ${table}_source_time_idx on ${table} (source, time desc, seq desc)`,
];

const columnDefinitions = `
  seq bigint generated always as identity,
  source text not null,
  id text not null,
  type text not null,
  subject text,
  time timestamptz not null,
  datacontenttype text,
  dataschema text,
  data jsonb,
  extensions jsonb,
  accepted_at timestamptz not null,
  stored_at timestamptz not null default clock_timestamp()`;

/** Moves the rows of `from` into `to` (same columns), keeping `seq` and the identity's next value. */
async function copyEvents(knex: Knex, from: string, to: string): Promise<void> {
  await knex.raw(`insert into ${to} (${columns}) overriding system value select ${columns} from ${from}`);
  await knex.raw(
    `select setval(pg_get_serial_sequence('${to}', 'seq'), coalesce((select max(seq) from ${to}), 0) + 1, false)`,
  );
}

/**
 * `events` becomes a table partitioned by month of event time (see db/partitions.ts), with
 * `event_keys` keeping (source, id) unique across months. Existing rows are copied in one
 * transaction while writers wait on the table lock (the consumer pauses and resumes on its own,
 * its write probe sees the lock); on a large table, run it in a quiet hour.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('lock table events in exclusive mode');
  await knex.raw('alter table events rename to events_unpartitioned');
  await knex.raw(
    'alter table events_unpartitioned rename constraint events_pkey to events_unpartitioned_pkey',
  );
  for (const suffix of ['time', 'type_time', 'subject_time', 'source_time']) {
    await knex.raw(`alter index events_${suffix}_idx rename to events_unpartitioned_${suffix}_idx`);
  }
  await knex.raw(`
    create table events (${columnDefinitions},
      constraint events_pkey primary key (source, id, time)
    ) partition by range (time)`);
  for (const statement of keysetIndexes('events')) await knex.raw(statement);
  await knex.raw(`
    create table event_keys (
      source text not null,
      id text not null,
      time timestamptz not null,
      constraint event_keys_pkey primary key (source, id)
    )`);
  const { rows } = await knex.raw<{ rows: { month: Date }[] }>(
    "select distinct date_trunc('month', time, 'UTC') as month from events_unpartitioned",
  );
  await createPartitions(knex, [...rows.map((r) => r.month), ...upcomingMonths(new Date())]);
  await copyEvents(knex, 'events_unpartitioned', 'events');
  await knex.raw(
    'insert into event_keys (source, id, time) select source, id, time from events_unpartitioned',
  );
  await knex.raw('drop table events_unpartitioned');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('lock table events in exclusive mode');
  await knex.raw(`create table events_unpartitioned (${columnDefinitions})`);
  await copyEvents(knex, 'events', 'events_unpartitioned');
  await knex.raw('drop table events');
  await knex.raw('drop table event_keys');
  await knex.raw('alter table events_unpartitioned rename to events');
  await knex.raw('alter table events add constraint events_pkey primary key (source, id)');
  for (const statement of keysetIndexes('events')) await knex.raw(statement);
}
