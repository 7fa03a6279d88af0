import type { Knex } from 'knex';

/**
 * Each event keeps the JSON text its producer sent (`event`), so it reads back as sent: big
 * integers, key order, `data: null` and every attribute intact, which jsonb columns could not
 * promise. The columns kept beside it (source, id, type, subject, time) are what queries filter,
 * order and count on; `time` is the event's own time or, when it sent none (`time_defaulted`), the
 * time the API accepted it.
 *
 * Existing rows get a text built from their columns (the only form they still have). A release
 * before this one keeps writing the old columns during a rolling upgrade; a trigger builds the text
 * of those rows, so every row has one. `down` rebuilds the old columns from the text.
 */
const textFromColumns = (row: string) => `(
  jsonb_build_object('specversion', '1.0', 'id', ${row}.id, 'source', ${row}.source, 'type', ${row}.type,
    'time', to_char(${row}.time, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
  || jsonb_strip_nulls(jsonb_build_object('subject', ${row}.subject,
    'datacontenttype', ${row}.datacontenttype, 'dataschema', ${row}.dataschema))
  || coalesce(${row}.extensions, '{}'::jsonb)
  || case when ${row}.data is not null or ${row}.datacontenttype is not null
       then jsonb_build_object('data', ${row}.data) else '{}'::jsonb end
)::text`;

export async function up(knex: Knex): Promise<void> {
  await knex.raw('lock table events in exclusive mode');
  await knex.raw(
    'alter table events add column event text, add column time_defaulted boolean not null default false',
  );
  await knex.raw(`update events set event = ${textFromColumns('events')}, data = null, extensions = null`);
  await knex.raw('alter table events alter column event set not null');
  await knex.raw(`
    create function ingesta_event_text_from_columns() returns trigger language plpgsql as $$
    begin
      new.event := ${textFromColumns('new')};
      new.data := null;
      new.extensions := null;
      return new;
    end $$`);
  // Not null is checked after BEFORE triggers: an older release's insert gets its text here first.
  await knex.raw(`
    create trigger events_text_from_columns before insert on events
    for each row when (new.event is null) execute function ingesta_event_text_from_columns()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('lock table events in exclusive mode');
  await knex.raw('drop trigger events_text_from_columns on events');
  await knex.raw('drop function ingesta_event_text_from_columns()');
  // jsonb cannot hold every text kept since (a \u0000 or an unpaired surrogate in data): such an
  // event keeps its attributes and loses its data in the older release's columns.
  await knex.raw(`
    create function pg_temp.ingesta_try_jsonb(value text) returns jsonb language plpgsql as $$
    begin
      return value::jsonb;
    exception when others then
      return jsonb_build_object('specversion', '1.0');
    end $$`);
  await knex.raw(`
    update events e set
      data = j -> 'data',
      datacontenttype = j ->> 'datacontenttype',
      dataschema = j ->> 'dataschema',
      extensions = nullif(j - array['specversion', 'id', 'source', 'type', 'subject', 'time',
        'datacontenttype', 'dataschema', 'data', 'data_base64'], '{}'::jsonb)
    from (select seq, time, pg_temp.ingesta_try_jsonb(event) as j from events) parsed
    where parsed.seq = e.seq and parsed.time = e.time`);
  await knex.raw('alter table events drop column event, drop column time_defaulted');
}
