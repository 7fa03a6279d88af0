import type { Knex } from 'knex';
import { maxMonthsAheadOfNow, partitionLockKey } from '../partitions.ts';

/**
 * `ingesta_create_event_partition(month)`: creates the partition of one month of `events` on behalf
 * of the caller, as the owner of `events` (SECURITY DEFINER), so the app's writer can make a missing
 * month without owning the table (the least-privilege login of the chart's `database.appRole`). It
 * does that and nothing else: the month must be the first instant of a UTC month and at most
 * `maxMonthsAheadOfNow` months ahead, whatever the caller's time window; the name and bounds are made
 * here, never taken from the caller. Writers and the maintenance job take turns on the same advisory
 * lock; a month that exists already is left alone (`false`). Every name is schema-qualified and the
 * search path holds only the system catalog, so no object a caller creates can stand in for one.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create function ingesta_create_event_partition(month timestamptz) returns boolean
    language plpgsql
    security definer
    set search_path = pg_catalog, pg_temp
    set timezone = 'UTC'
    as $$
    declare
      first timestamptz := date_trunc('month', month);
      name text := format('public.%I', format('events_y%sm%s', to_char(first, 'YYYY'), to_char(first, 'MM')));
    begin
      if month is null or first <> month then
        raise exception 'not the first instant of a UTC month: %', month using errcode = '22023';
      end if;
      if first > date_trunc('month', now()) + interval '${maxMonthsAheadOfNow} months' then
        raise exception 'month % is more than ${maxMonthsAheadOfNow} months ahead', first using errcode = '22023';
      end if;
      perform pg_advisory_xact_lock(${partitionLockKey});
      if to_regclass(name) is not null then
        return false;
      end if;
      execute format('create table %s partition of public.events for values from (%L) to (%L)',
        name, first, first + interval '1 month');
      return true;
    end
    $$
  `);
  await knex.raw('revoke all on function ingesta_create_event_partition(timestamptz) from public');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop function if exists ingesta_create_event_partition(timestamptz)');
}
