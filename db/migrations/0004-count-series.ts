import type { Knex } from 'knex';

/**
 * Rollups become series: one row per period holding the counts of all its buckets (the 60 minutes
 * of an hour, the 24 hours of a day, the 31 days of a month; slots of days a month lacks stay 0).
 * /v1/stats over a month of minutes then reads 720 rows instead of 43,200, and the tables are
 * about twenty times smaller. Existing rollups are converted here, in one transaction while
 * writers wait on the table locks; `down` expands the series back into one row per bucket. The
 * bucket tables stay, fed into the series by a trigger, until no release writes them.
 */
const widths = `(values ('minute', 'hour', 60, 60), ('hour', 'day', 24, 3600), ('day', 'month', 31, 86400))
  as w(bucket_width, period, slots, seconds)`;

const slotsCheck = `check (cardinality(counts) = case bucket_width when 'minute' then 60 when 'hour' then 24 else 31 end)
  check (0 <= all (counts))`;

/** Rows of (bucket_width, bucket_start, count, …keys) from `rows`, folded into one array per period. */
function toSeries(rows: string, keys: string[]): string {
  const k = keys.join(', ');
  return `
    with slotted as (
      select r.bucket_width, ${keys.map((key) => `r.${key}`).join(', ')}, w.slots,
             date_trunc(w.period, r.bucket_start, 'UTC') as period_start,
             1 + floor(extract(epoch from r.bucket_start - date_trunc(w.period, r.bucket_start, 'UTC')) / w.seconds)::int as slot,
             r.count
      from ${rows} r join ${widths} using (bucket_width)
    ),
    periods as (select distinct bucket_width, ${k}, period_start, slots from slotted)
    select p.bucket_width, ${keys.map((key) => `p.${key}`).join(', ')}, p.period_start,
           array_agg(coalesce(s.count, 0) order by g) as counts
    from periods p
    cross join lateral generate_series(1, p.slots) g
    left join slotted s
      on s.bucket_width = p.bucket_width and s.period_start = p.period_start and s.slot = g
         ${keys.map((key) => `and s.${key} = p.${key}`).join(' ')}
    group by p.bucket_width, ${keys.map((key) => `p.${key}`).join(', ')}, p.period_start`;
}

export async function up(knex: Knex): Promise<void> {
  await knex.raw('lock table event_rollups, event_type_rollups in exclusive mode');
  // Every insert or update of a series row takes a new version: a reader that rendered a period
  // before knows from the version alone whether its rendering still holds (db/count-series.ts).
  await knex.raw('create sequence event_counts_version as bigint');
  // Counts are not indexed: with room left on each page, an update stays on its page (HOT).
  await knex.raw(`
    create table event_counts (
      bucket_width text not null check (bucket_width in ('minute', 'hour', 'day')),
      type text not null,
      period_start timestamptz not null,
      counts bigint[] not null ${slotsCheck},
      version bigint not null default nextval('event_counts_version'),
      constraint event_counts_pkey primary key (bucket_width, type, period_start)
    ) with (fillfactor = 70)`);
  await knex.raw(`
    create table event_counts_by_source (
      bucket_width text not null check (bucket_width in ('minute', 'hour', 'day')),
      source text not null,
      type text not null,
      period_start timestamptz not null,
      counts bigint[] not null ${slotsCheck},
      version bigint not null default nextval('event_counts_version'),
      constraint event_counts_by_source_pkey primary key (bucket_width, source, type, period_start)
    ) with (fillfactor = 70)`);
  await knex.raw(
    `insert into event_counts (bucket_width, type, period_start, counts) ${toSeries('event_type_rollups', ['type'])}`,
  );
  await knex.raw(
    `insert into event_counts_by_source (bucket_width, source, type, period_start, counts)
     ${toSeries('event_rollups', ['source', 'type'])}`,
  );
  // Expand, not contract: the previous release keeps upserting the bucket rows until its pods are
  // replaced, and its API keeps reading them. Each of its increments is carried into the series, so
  // nothing it stores goes uncounted; a later migration drops the bucket rows and this trigger.
  await knex.raw(`
    create function ingesta_bucket_rows_to_series() returns trigger language plpgsql as $$
    declare
      v_delta bigint := new.count - case when tg_op = 'UPDATE' then old.count else 0 end;
      v_period text := case new.bucket_width when 'minute' then 'hour' when 'hour' then 'day' else 'month' end;
      v_slots int := case new.bucket_width when 'minute' then 60 when 'hour' then 24 else 31 end;
      v_period_start timestamptz := date_trunc(v_period, new.bucket_start, 'UTC');
      v_slot int := 1 + floor(extract(epoch from new.bucket_start - v_period_start)
                            / extract(epoch from ('1 ' || new.bucket_width)::interval))::int;
      v_added bigint[] := array_fill(0::bigint, array[v_slots]);
    begin
      if v_delta = 0 then return null; end if;
      v_added[v_slot] := v_delta;
      if tg_table_name = 'event_rollups' then
        insert into event_counts_by_source as c (bucket_width, source, type, period_start, counts)
        values (new.bucket_width, new.source, new.type, v_period_start, v_added)
        on conflict (bucket_width, source, type, period_start) do update
          set counts[v_slot] = c.counts[v_slot] + v_delta, version = nextval('event_counts_version');
      else
        insert into event_counts as c (bucket_width, type, period_start, counts)
        values (new.bucket_width, new.type, v_period_start, v_added)
        on conflict (bucket_width, type, period_start) do update
          set counts[v_slot] = c.counts[v_slot] + v_delta, version = nextval('event_counts_version');
      end if;
      return null;
    end $$`);
  for (const table of ['event_rollups', 'event_type_rollups']) {
    await knex.raw(`
      create trigger ${table}_to_series after insert or update on ${table}
      for each row execute function ingesta_bucket_rows_to_series()`);
  }
}

/** Bucket rows of a series table: one per slot with a count, as 0001 and 0002 kept them. */
const fromSeries = (table: string, keys: string[]) => `
  select c.bucket_width, c.period_start + (u.slot - 1) * (w.seconds * interval '1 second') as bucket_start,
         ${keys.map((key) => `c.${key}`).join(', ')}, u.count
  from ${table} c
  join ${widths} using (bucket_width)
  cross join lateral unnest(c.counts) with ordinality as u(count, slot)
  where u.count > 0`;

export async function down(knex: Knex): Promise<void> {
  await knex.raw('lock table event_counts, event_counts_by_source in exclusive mode');
  await knex.raw('drop trigger event_rollups_to_series on event_rollups');
  await knex.raw('drop trigger event_type_rollups_to_series on event_type_rollups');
  await knex.raw('drop function ingesta_bucket_rows_to_series()');
  // The series hold every count, including those only this release wrote.
  await knex.raw('truncate event_rollups, event_type_rollups');
  await knex.raw(
    `insert into event_rollups (bucket_width, bucket_start, source, type, count)
     ${fromSeries('event_counts_by_source', ['source', 'type'])}`,
  );
  await knex.raw(
    `insert into event_type_rollups (bucket_width, bucket_start, type, count)
     ${fromSeries('event_counts', ['type'])}`,
  );
  await knex.raw('drop table event_counts_by_source');
  await knex.raw('drop table event_counts');
  await knex.raw('drop sequence event_counts_version');
}
