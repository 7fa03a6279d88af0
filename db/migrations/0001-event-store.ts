import type { Knex } from 'knex';

/**
 * The event store: one row per (source, id), newest-first keyset indexes for each filter the API
 * offers, and count rollups kept at insert time so /v1/stats reads buckets, not events.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table events (
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
      stored_at timestamptz not null default clock_timestamp(),
      constraint events_pkey primary key (source, id)
    )`);
  // Keyset pagination orders by (time desc, seq desc); each filter gets its own ordered index.
  await knex.raw('create index events_time_idx on events (time desc, seq desc)');
  await knex.raw('create index events_type_time_idx on events (type, time desc, seq desc)');
  await knex.raw('create index events_subject_time_idx on events (subject, time desc, seq desc)');
  await knex.raw('create index events_source_time_idx on events (source, time desc, seq desc)');
  await knex.raw(`
    create table event_rollups (
      bucket_width text not null check (bucket_width in ('minute', 'hour', 'day')),
      bucket_start timestamptz not null,
      type text not null,
      source text not null,
      count bigint not null check (count >= 0),
      constraint event_rollups_pkey primary key (bucket_width, bucket_start, type, source)
    )`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table if exists event_rollups');
  await knex.raw('drop table if exists events');
}
