import type { Knex } from 'knex';

/**
 * Counts per bucket and type across all sources, kept at insert time beside the per-source rollups.
 * /v1/stats without a source filter (the common dashboard query: one type, or every type) then
 * reads finished numbers in key order, instead of summing each bucket over every source at read
 * time: a month of minute buckets for one type is one index range of at most 43,200 entries, not
 * three times that to aggregate. The key includes the count so that range is read from the index
 * alone. Existing per-source rollups are summed into it once, here.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table event_type_rollups (
      bucket_width text not null check (bucket_width in ('minute', 'hour', 'day')),
      type text not null,
      bucket_start timestamptz not null,
      count bigint not null check (count >= 0),
      constraint event_type_rollups_pkey primary key (bucket_width, type, bucket_start) include (count)
    )`);
  await knex.raw(`
    insert into event_type_rollups (bucket_width, type, bucket_start, count)
    select bucket_width, type, bucket_start, sum(count)
    from event_rollups
    group by 1, 2, 3`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table if exists event_type_rollups');
}
