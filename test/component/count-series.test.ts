import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { Database } from '../../db/database.ts';
import { EventRepository, type NewEvent, type StatsQuery } from '../../db/event-repository.ts';
import { migratorConfig } from '../../db/migrate.ts';
import { dropPartitionsBefore } from '../../db/partitions.ts';
import { newEvent } from '../support/events.ts';
import { type ConnectedTestDatabase, connectTestDatabase, readStats } from '../support/postgres.ts';

const event = (id: string, time: string, type = 'series.test', source = '/series'): NewEvent =>
  newEvent({ specversion: '1.0', id, source, type, time });

/** Stats from the count series: buckets at period edges, bounds, interleaved types. */
describe('count series', () => {
  let database: ConnectedTestDatabase;
  let repository: EventRepository;
  const stats = (query: StatsQuery) => readStats(repository, query);

  before(async () => {
    database = await connectTestDatabase();
    repository = new EventRepository(database.db);
  });
  after(() => database.drop());
  beforeEach(async () => {
    await database.db.raw('truncate events, event_keys, event_counts, event_counts_by_source');
  });

  test('when events fall on the last and first bucket of periods, then each is counted in its own bucket', async () => {
    await repository.insertBatch([
      event('a', '2026-04-30T23:59:59.999Z'), // last minute of an hour, hour of a day, day of a 30-day month
      event('b', '2026-05-01T00:00:00.000Z'),
      event('c', '2026-05-31T12:00:00Z'), // day 31
      event('d', '2026-05-31T12:00:30Z', 'series.other'),
    ]);
    const range = { from: '2026-04-01T00:00:00Z', to: '2026-07-01T00:00:00Z' };
    assert.deepEqual(await stats({ ...range, bucket: 'day' }), [
      { start: '2026-04-30T00:00:00.000000Z', type: 'series.test', count: 1 },
      { start: '2026-05-01T00:00:00.000000Z', type: 'series.test', count: 1 },
      { start: '2026-05-31T00:00:00.000000Z', type: 'series.other', count: 1 },
      { start: '2026-05-31T00:00:00.000000Z', type: 'series.test', count: 1 },
    ]);
    assert.deepEqual(await stats({ ...range, bucket: 'hour', type: 'series.test' }), [
      { start: '2026-04-30T23:00:00.000000Z', type: 'series.test', count: 1 },
      { start: '2026-05-01T00:00:00.000000Z', type: 'series.test', count: 1 },
      { start: '2026-05-31T12:00:00.000000Z', type: 'series.test', count: 1 },
    ]);
    assert.deepEqual(await stats({ ...range, bucket: 'minute', source: '/series' }), [
      { start: '2026-04-30T23:59:00.000000Z', type: 'series.test', count: 1 },
      { start: '2026-05-01T00:00:00.000000Z', type: 'series.test', count: 1 },
      { start: '2026-05-31T12:00:00.000000Z', type: 'series.other', count: 1 },
      { start: '2026-05-31T12:00:00.000000Z', type: 'series.test', count: 1 },
    ]);
  });

  test('when types share periods, then buckets come in start order and by type within a start', async () => {
    await repository.insertBatch([
      event('1', '2026-06-01T10:05:00Z', 'b.type'),
      event('2', '2026-06-01T10:01:00Z', 'c.type'),
      event('3', '2026-06-01T10:05:00Z', 'a.type'),
      event('4', '2026-06-01T11:00:00Z', 'a.type'),
    ]);
    assert.deepEqual(
      await stats({ from: '2026-06-01T10:00:00Z', to: '2026-06-01T12:00:00Z', bucket: 'minute' }),
      [
        { start: '2026-06-01T10:01:00.000000Z', type: 'c.type', count: 1 },
        { start: '2026-06-01T10:05:00.000000Z', type: 'a.type', count: 1 },
        { start: '2026-06-01T10:05:00.000000Z', type: 'b.type', count: 1 },
        { start: '2026-06-01T11:00:00.000000Z', type: 'a.type', count: 1 },
      ],
    );
  });

  test('when bounds fall inside periods, then buckets start at or after `from` rounded down and before `to`', async () => {
    await repository.insertBatch(
      ['08:58', '08:59', '09:00', '09:01'].map((hm) => event(hm, `2026-06-02T${hm}:10Z`)),
    );
    const minutes = async (from: string, to: string) =>
      ((await stats({ from, to, bucket: 'minute' })) as { start: string }[]).map((b) =>
        b.start.slice(11, 16),
      );

    assert.deepEqual(await minutes('2026-06-02T08:59:30Z', '2026-06-02T09:01:00Z'), ['08:59', '09:00']);
    assert.deepEqual(
      await minutes('2026-06-02T08:59:30Z', '2026-06-02T09:01:00.000001Z'),
      ['08:59', '09:00', '09:01'],
      'a bucket starting a microsecond before `to` is in',
    );
    assert.deepEqual(
      await minutes('2026-06-02T10:59:00+02:00', '2026-06-02T11:00:30+02:00'),
      ['08:59', '09:00'],
      'offsets are honoured',
    );
    assert.deepEqual(await minutes('2026-06-02T09:02:00Z', '2026-06-02T10:00:00Z'), [], 'an empty range');
  });

  test('when many statements count the same minute at once, then no count is lost', async () => {
    const batches = Array.from({ length: 20 }, (_, b) =>
      Array.from({ length: 10 }, (_, i) =>
        event(`c${b}-${i}`, '2026-06-03T07:30:00Z', 'series.hot', `/s${b % 3}`),
      ),
    );
    // Statements of 10 rows, four at a time: they contend for the same series rows.
    const writer = new EventRepository(database.db, { maxConcurrentInserts: 4, maxRowsPerInsert: 10 });
    await Promise.all(batches.map((batch) => writer.insertBatch(batch)));
    const range = { from: '2026-06-03T00:00:00Z', to: '2026-06-04T00:00:00Z' };
    assert.deepEqual(await stats({ ...range, bucket: 'minute' }), [
      { start: '2026-06-03T07:30:00.000000Z', type: 'series.hot', count: 200 },
    ]);
    const bySource = await Promise.all(
      ['/s0', '/s1', '/s2'].map(async (source) => stats({ ...range, bucket: 'day', source })),
    );
    assert.deepEqual(
      bySource.map((b) => (b as { count: number }[])[0]?.count),
      [70, 70, 60],
    );
  });

  test('when an event lands late in a period already answered, then the next answer counts it', async () => {
    const range = { from: '2026-06-04T00:00:00Z', to: '2026-06-05T00:00:00Z', bucket: 'minute' as const };
    await repository.insertBatch([
      event('l1', '2026-06-04T05:10:00Z'),
      event('l2', '2026-06-04T06:00:00Z', 'x.type'),
    ]);
    const first = await stats(range);
    assert.deepEqual(await stats(range), first, 'the same answer twice, the second from rendered periods');

    await repository.insertBatch([
      event('l3', '2026-06-04T05:10:59Z'),
      event('l4', '2026-06-04T06:00:00Z', 'w.type'),
    ]);
    assert.deepEqual(await stats(range), [
      { start: '2026-06-04T05:10:00.000000Z', type: 'series.test', count: 2 },
      { start: '2026-06-04T06:00:00.000000Z', type: 'w.type', count: 1 },
      { start: '2026-06-04T06:00:00.000000Z', type: 'x.type', count: 1 },
    ]);
    assert.deepEqual(
      await stats({ ...range, from: '2026-06-04T05:30:00Z' }),
      [
        { start: '2026-06-04T06:00:00.000000Z', type: 'w.type', count: 1 },
        { start: '2026-06-04T06:00:00.000000Z', type: 'x.type', count: 1 },
      ],
      'a period cut by the range is not answered whole',
    );
    assert.deepEqual(
      await stats(range),
      [
        { start: '2026-06-04T05:10:00.000000Z', type: 'series.test', count: 2 },
        { start: '2026-06-04T06:00:00.000000Z', type: 'w.type', count: 1 },
        { start: '2026-06-04T06:00:00.000000Z', type: 'x.type', count: 1 },
      ],
      'nor is what was rendered for the cut range kept for the whole one',
    );
    assert.deepEqual(
      await stats({ ...range, source: '/series' }),
      [
        { start: '2026-06-04T05:10:00.000000Z', type: 'series.test', count: 2 },
        { start: '2026-06-04T06:00:00.000000Z', type: 'w.type', count: 1 },
        { start: '2026-06-04T06:00:00.000000Z', type: 'x.type', count: 1 },
      ],
      'per source',
    );
    assert.deepEqual(await stats({ ...range, source: '/elsewhere' }), [], 'another source is another answer');
  });

  test('when the range cuts its first and last periods, then their buckets come before and after the whole ones', async () => {
    await repository.insertBatch(
      ['09:10', '09:59', '10:15', '11:45', '12:10', '12:40'].map((hm) => event(hm, `2026-06-06T${hm}:00Z`)),
    );
    const range = { from: '2026-06-06T09:30:00Z', to: '2026-06-06T12:30:00Z', bucket: 'minute' as const };
    const expected = ['09:59', '10:15', '11:45', '12:10'].map((hm) => ({
      start: `2026-06-06T${hm}:00.000000Z`,
      type: 'series.test',
      count: 1,
    }));
    assert.deepEqual(await stats(range), expected);
    assert.deepEqual(await stats(range), expected, 'again, the whole periods as kept');
  });

  test('when retention deletes whole periods already answered, then the next answer leaves them out', async () => {
    const days = ['2026-01-15', '2026-02-15', '2026-03-15'];
    await repository.insertBatch(days.map((d) => event(d, `${d}T12:00:00Z`)));
    const range = { from: '2026-01-01T00:00:00Z', to: '2026-04-01T00:00:00Z', bucket: 'day' as const };
    const answer = (kept: string[]) =>
      kept.map((d) => ({ start: `${d}T00:00:00.000000Z`, type: 'series.test', count: 1 }));
    assert.deepEqual(await stats(range), answer(days));

    await dropPartitionsBefore(database.db, new Date('2026-02-01T00:00:00Z'));
    assert.deepEqual(await stats(range), answer(days.slice(1)));
  });

  test('when rendered periods exceed the cache, then the oldest are let go and answers stay whole', async () => {
    const small = new EventRepository(database.db, { statsJson: { maxCachedBytes: 200 } });
    const hours = Array.from({ length: 6 }, (_, h) => event(`e${h}`, `2026-06-05T0${h}:00:00Z`));
    await repository.insertBatch(hours);
    const range = { from: '2026-06-05T00:00:00Z', to: '2026-06-06T00:00:00Z', bucket: 'minute' as const };
    const expected = hours.map((_, h) => ({
      start: `2026-06-05T0${h}:00:00.000000Z`,
      type: 'series.test',
      count: 1,
    }));
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await readStats(small, range), expected);
    }
  });
});

describe('count series migration', () => {
  let database: ConnectedTestDatabase;
  let db: Database;

  before(async () => {
    database = await connectTestDatabase({ migrate: false, poolMax: 2 });
    db = database.db;
  });
  after(() => database.drop());

  const rows = async (sql: string) => ((await db.raw(sql)) as { rows: unknown[] }).rows;
  const rollups = [
    ['minute', '2026-02-28T23:59:00Z', 'x', '/a', 2],
    ['minute', '2026-02-28T23:59:00Z', 'x', '/b', 3],
    ['minute', '2026-03-01T00:00:00Z', 'y', '/a', 1],
    ['hour', '2026-02-28T23:00:00Z', 'x', '/a', 2],
    ['hour', '2026-02-28T23:00:00Z', 'x', '/b', 3],
    ['hour', '2026-03-01T00:00:00Z', 'y', '/a', 1],
    ['day', '2026-02-28T00:00:00Z', 'x', '/a', 2],
    ['day', '2026-02-28T00:00:00Z', 'x', '/b', 3],
    ['day', '2026-03-31T00:00:00Z', 'y', '/a', 1],
  ] as const;
  const byBucket = 'order by bucket_width, bucket_start, type';

  test('when rollups are migrated to series and back, then every count survives both ways, including the previous release writes', async () => {
    for (let i = 0; i < 3; i++) await db.migrate.up(migratorConfig); // 0001-0003
    for (const [width, start, type, source, n] of rollups) {
      await db.raw(
        'insert into event_rollups (bucket_width, bucket_start, type, source, count) values (?, ?, ?, ?, ?)',
        [width, start, type, source, n],
      );
    }
    await db.raw(`insert into event_type_rollups (bucket_width, type, bucket_start, count)
      select bucket_width, type, bucket_start, sum(count) from event_rollups group by 1, 2, 3`);
    const before = {
      bySource: await rows(`select * from event_rollups ${byBucket}, source`),
      byType: await rows(`select * from event_type_rollups ${byBucket}`),
    };

    await db.migrate.up(migratorConfig); // 0004
    const repository = new EventRepository(db);
    const stats = (query: StatsQuery) => readStats(repository, query);
    const range = { from: '2026-02-01T00:00:00Z', to: '2026-04-01T00:00:00Z' };
    assert.deepEqual(await stats({ ...range, bucket: 'minute' }), [
      { start: '2026-02-28T23:59:00.000000Z', type: 'x', count: 5 },
      { start: '2026-03-01T00:00:00.000000Z', type: 'y', count: 1 },
    ]);
    assert.deepEqual(await stats({ ...range, bucket: 'day', source: '/b' }), [
      { start: '2026-02-28T00:00:00.000000Z', type: 'x', count: 3 },
    ]);
    assert.deepEqual(await stats({ ...range, bucket: 'day', type: 'y' }), [
      { start: '2026-03-31T00:00:00.000000Z', type: 'y', count: 1 },
    ]);
    assert.deepEqual(
      await rows('select count(*)::int as n from event_counts'),
      [{ n: 6 }],
      'one row per period',
    );

    // The previous release's consumer, still running during the upgrade, upserts bucket rows.
    await db.raw(`
      with rolled as (
        insert into event_rollups (bucket_width, bucket_start, type, source, count)
        values ('minute', '2026-02-28T23:59:00Z', 'x', '/a', 4), ('minute', '2026-03-01T00:07:00Z', 'x', '/c', 1)
        on conflict (bucket_width, bucket_start, type, source)
          do update set count = event_rollups.count + excluded.count
      )
      insert into event_type_rollups (bucket_width, type, bucket_start, count)
      values ('minute', 'x', '2026-02-28T23:59:00Z', 4), ('minute', 'x', '2026-03-01T00:07:00Z', 1)
      on conflict (bucket_width, type, bucket_start)
        do update set count = event_type_rollups.count + excluded.count`);
    assert.deepEqual(
      await stats({ ...range, bucket: 'minute' }),
      [
        { start: '2026-02-28T23:59:00.000000Z', type: 'x', count: 9 },
        { start: '2026-03-01T00:00:00.000000Z', type: 'y', count: 1 },
        { start: '2026-03-01T00:07:00.000000Z', type: 'x', count: 1 },
      ],
      'what the previous release stores is counted in the series',
    );
    assert.deepEqual(await stats({ ...range, bucket: 'minute', source: '/a', type: 'x' }), [
      { start: '2026-02-28T23:59:00.000000Z', type: 'x', count: 6 },
    ]);

    await db.migrate.down(migratorConfig);
    assert.deepEqual(
      await rows(`select * from event_type_rollups where bucket_width = 'minute' ${byBucket}`),
      [
        { bucket_width: 'minute', type: 'x', bucket_start: new Date('2026-02-28T23:59:00Z'), count: '9' },
        { bucket_width: 'minute', type: 'y', bucket_start: new Date('2026-03-01T00:00:00Z'), count: '1' },
        { bucket_width: 'minute', type: 'x', bucket_start: new Date('2026-03-01T00:07:00Z'), count: '1' },
      ],
      'rolled back, the bucket rows hold every count',
    );
    await db.raw(
      `delete from event_rollups where source = '/c' or (bucket_width = 'minute' and source = '/a' and type = 'x')`,
    );
    await db.raw(`insert into event_rollups (bucket_width, bucket_start, type, source, count)
      values ('minute', '2026-02-28T23:59:00Z', 'x', '/a', 2)`);
    await db.raw(`delete from event_type_rollups where bucket_width = 'minute' and type = 'x'`);
    await db.raw(`insert into event_type_rollups (bucket_width, type, bucket_start, count)
      values ('minute', 'x', '2026-02-28T23:59:00Z', 5)`);
    assert.deepEqual(await rows(`select * from event_rollups ${byBucket}, source`), before.bySource);
    assert.deepEqual(await rows(`select * from event_type_rollups ${byBucket}`), before.byType);
    await db.migrate.up(migratorConfig);
    assert.deepEqual(await stats({ ...range, bucket: 'hour', type: 'x' }), [
      { start: '2026-02-28T23:00:00.000000Z', type: 'x', count: 5 },
    ]);
  });
});
