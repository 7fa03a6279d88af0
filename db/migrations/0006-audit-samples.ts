import type { Knex } from 'knex';

/**
 * Keys of a sample of accepted events, recorded by the API after each 202, which the store audit
 * (db/store-audit.ts) looks up in `event_keys` once they have had time to be stored. Small: a share
 * of the traffic (AUDIT_SAMPLE_RATE), and every verified row is deleted.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table audit_samples (
      source text not null,
      id text not null,
      accepted_at timestamptz not null,
      constraint audit_samples_pkey primary key (source, id)
    )`);
  await knex.raw('create index audit_samples_accepted_at on audit_samples (accepted_at)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table audit_samples');
}
