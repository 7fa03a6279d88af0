import type { Knex } from 'knex';

/**
 * /v1/stats for one type (the common dashboard query) reads its buckets in order from this index
 * alone, instead of filtering every type's buckets: an index-only scan whose cost is the buckets
 * returned. `count` is included so no heap page is read for it.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(
    'create index if not exists event_rollups_type_idx on event_rollups (bucket_width, type, bucket_start) include (count)',
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index if exists event_rollups_type_idx');
}
