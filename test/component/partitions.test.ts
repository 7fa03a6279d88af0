import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, beforeEach, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { Database } from '../../db/database.ts';
import { EventRepository, type NewEvent, type StatsQuery } from '../../db/event-repository.ts';
import { migratorConfig } from '../../db/migrate.ts';
import { createPartitions, listPartitions, maintainPartitions } from '../../db/partitions.ts';
import { newEvent, parsedText } from '../support/events.ts';
import {
  type ConnectedTestDatabase,
  connectTestDatabase,
  createTestDatabase,
  readStats,
  type TestDatabase,
} from '../support/postgres.ts';

const run = promisify(execFile);

const event = (id: string, time: string, source = '/partitions'): NewEvent =>
  newEvent({ specversion: '1.0', id, source, type: 'partition.test', time, data: { id } });

const count = async (db: Database, sql: string, bindings: string[] = []) =>
  Number(((await db.raw(sql, bindings)) as { rows: { n: string }[] }).rows[0]?.n);

/** Monthly partitions of `events`: made ahead and on demand, idempotency across months, retention. */
describe('event partitions and retention', () => {
  let database: ConnectedTestDatabase;
  let db: Database;
  let repository: EventRepository;

  before(async () => {
    database = await connectTestDatabase();
    db = database.db;
    repository = new EventRepository(db);
  });
  const stats = (query: StatsQuery) => readStats(repository, query);
  after(() => database.drop());
  beforeEach(async () => {
    await db.raw('truncate events, event_keys, event_counts, event_counts_by_source');
  });

  test('when an event falls in a month without a partition, then the partition is made and the event stored', async () => {
    assert.ok(!(await listPartitions(db)).includes('events_y2019m03'));
    const result = await repository.insertBatch([
      event('backfill-1', '2019-03-05T10:00:00Z'),
      event('current-1', new Date().toISOString()),
    ]);
    assert.equal(result.inserted.length, 2);
    assert.ok((await listPartitions(db)).includes('events_y2019m03'));
    assert.equal(
      (await repository.get('/partitions', 'backfill-1'))?.metadata.time,
      '2019-03-05T10:00:00.000000Z',
    );
  });

  test('when the same (source, id) arrives again with another time, then it is stored once', async () => {
    const first = await repository.insertBatch([event('resent', '2026-01-31T23:59:59Z')]);
    // A client resending without `time` gets a new one filled in at the API: another month here.
    const again = await Promise.all([
      repository.insertBatch([event('resent', '2026-02-01T00:00:01Z')]),
      repository.insertBatch([
        event('resent', '2026-01-31T23:59:59Z'),
        event('resent', '2026-03-01T00:00:00Z'),
      ]),
    ]);
    assert.deepEqual(first.inserted, [{ source: '/partitions', id: 'resent' }]);
    assert.deepEqual(
      again.map((r) => r.inserted),
      [[], []],
    );
    assert.equal(await count(db, "select count(*) as n from events where id = 'resent'"), 1);
    assert.equal(
      (await repository.get('/partitions', 'resent'))?.metadata.time,
      '2026-01-31T23:59:59.000000Z',
    );
    assert.equal(
      await count(db, 'select sum(c) as n from event_counts, unnest(counts) as c where bucket_width = ?', [
        'day',
      ]),
      1,
    );
  });

  test('when partition makers race for the same months, then each month is made once and both succeed', async () => {
    const months = [new Date('2031-05-10T00:00:00Z'), new Date('2031-06-10T00:00:00Z')];
    const results = await Promise.all([createPartitions(db, months), createPartitions(db, months)]);
    assert.deepEqual(results.flat().sort(), ['events_y2031m05', 'events_y2031m06']);
  });

  test('when maintenance runs, then this month and the next three have partitions, and a second run changes nothing', async () => {
    const now = new Date('2040-11-15T12:00:00Z');
    const first = await maintainPartitions(db, { now, retentionDays: 0 });
    assert.deepEqual(first.created, [
      'events_y2040m11',
      'events_y2040m12',
      'events_y2041m01',
      'events_y2041m02',
    ]);
    assert.deepEqual(await maintainPartitions(db, { now, retentionDays: 0 }), { created: [], dropped: [] });
  });

  test('when retention runs, then only months wholly older than the cutoff go, with their keys and rollups', async () => {
    await repository.insertBatch([
      event('old-1', '2025-01-10T08:00:00Z'),
      event('old-2', '2025-02-27T23:59:59Z'),
      event('edge', '2025-03-01T00:00:00Z'), // in the cutoff's month: kept
      event('new', '2025-03-20T00:00:00Z'),
    ]);
    // Cutoff 2025-03-16: January and February have ended before it; March has not.
    const { dropped } = await maintainPartitions(db, {
      now: new Date('2025-04-15T00:00:00Z'),
      retentionDays: 30,
    });

    assert.deepEqual(
      dropped.filter((name) => name.startsWith('events_y2025')),
      ['events_y2025m01', 'events_y2025m02'],
    );
    assert.ok(!(await listPartitions(db)).some((name) => name < 'events_y2025m03'), 'older months went too');
    assert.equal(await repository.get('/partitions', 'old-1'), undefined);
    assert.ok(await repository.get('/partitions', 'edge'));
    assert.deepEqual(
      (await repository.list({}, 10)).items.map((e) => parsedText(e).id),
      ['new', 'edge'],
    );
    assert.equal(await count(db, "select count(*) as n from event_keys where id like 'old-%'"), 0);
    assert.deepEqual(
      await stats({ from: '2025-01-01T00:00:00Z', to: '2025-04-01T00:00:00Z', bucket: 'day' }),
      [
        { start: '2025-03-01T00:00:00.000000Z', type: 'partition.test', count: 1 },
        { start: '2025-03-20T00:00:00.000000Z', type: 'partition.test', count: 1 },
      ],
      'stats count only what can still be read',
    );
    assert.equal(
      await count(db, "select count(*) as n from event_counts_by_source where period_start < '2025-03-01'"),
      0,
    );
    assert.deepEqual(
      (await maintainPartitions(db, { now: new Date('2025-04-15T00:00:00Z'), retentionDays: 30 })).dropped,
      [],
      'a second run finds nothing left to drop',
    );
  });

  test('when retention is 0, then nothing is dropped however old', async () => {
    await repository.insertBatch([event('ancient', '2001-01-01T00:00:00Z')]);
    const { dropped } = await maintainPartitions(db, { retentionDays: 0 });
    assert.deepEqual(dropped, []);
    assert.ok(await repository.get('/partitions', 'ancient'));
  });

  test('when a writer holds the table, then maintenance gives up with a lock timeout instead of queueing writers behind it', async () => {
    await repository.insertBatch([event('held', '2024-06-01T00:00:00Z')]);
    const holder = await db.client.acquireConnection();
    try {
      await holder.query('begin');
      await holder.query('lock table events in row exclusive mode');
      await assert.rejects(
        maintainPartitions(db, {
          now: new Date('2026-01-01T00:00:00Z'),
          retentionDays: 1,
          locks: { lockTimeoutMs: 50, attempts: 2 },
        }),
        (err: { code?: string }) => err.code === '55P03',
      );
    } finally {
      await holder.query('rollback');
      await db.client.releaseConnection(holder);
    }
    assert.ok(await repository.get('/partitions', 'held'), 'nothing was dropped');
  });
});

describe('partitioning migration', () => {
  let database: ConnectedTestDatabase;
  let db: Database;

  before(async () => {
    database = await connectTestDatabase({ migrate: false, poolMax: 2 });
    db = database.db;
  });
  after(() => database.drop());

  test('when an unpartitioned store is migrated and rolled back, then its rows, keys and sequence carry over', async () => {
    await db.migrate.up(migratorConfig); // 0001
    await db.migrate.up(migratorConfig); // 0002
    await db.raw(`
      insert into events (source, id, type, time, data, accepted_at)
      values ('/m', 'a', 't', '2024-02-03T00:00:00Z', '{"n":1}', now()),
             ('/m', 'b', 't', '2025-07-04T00:00:00Z', null, now())`);
    await db.migrate.up(migratorConfig); // 0003
    assert.deepEqual(
      ((await db.raw('select id, seq from events order by seq')) as { rows: unknown[] }).rows,
      [
        { id: 'a', seq: '1' },
        { id: 'b', seq: '2' },
      ],
    );
    assert.equal(await count(db, 'select count(*) as n from event_keys'), 2);
    const partitions = await listPartitions(db);
    assert.ok(partitions.includes('events_y2024m02') && partitions.includes('events_y2025m07'));
    await db.raw(
      `insert into events (source, id, type, time, accepted_at) values ('/m', 'c', 't', now(), now())`,
    );
    assert.equal(await count(db, "select seq as n from events where id = 'c'"), 3, 'the sequence continues');

    await db.migrate.down(migratorConfig);
    assert.equal(await count(db, 'select count(*) as n from events'), 3);
    assert.equal(await count(db, "select count(*) as n from pg_class where relname = 'event_keys'"), 0);
    await assert.rejects(
      db.raw(
        `insert into events (source, id, type, time, accepted_at) values ('/m', 'a', 't', now(), now())`,
      ),
      /events_pkey/,
      'the unpartitioned table has its (source, id) key back',
    );
    await db.migrate.up(migratorConfig);
    assert.equal(await count(db, 'select count(*) as n from events'), 3);
  });
});

describe('maintenance command', () => {
  let database: TestDatabase;

  before(async () => {
    database = await createTestDatabase();
  });
  after(() => database.drop());

  const maintain = (env: Record<string, string>) =>
    run(process.execPath, ['db/cli.ts', 'maintain'], {
      env: { PATH: process.env.PATH ?? '', DATABASE_URL: database.url, ...env },
    });

  test('when run after migrating, then it reports what it did as one JSON line', async () => {
    await run(process.execPath, ['db/cli.ts', 'latest'], {
      env: { PATH: process.env.PATH ?? '', DATABASE_URL: database.url },
    });
    const { stdout } = await maintain({ EVENT_RETENTION_DAYS: '90' });
    const line = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}');
    assert.equal(line.msg, 'nothing to do', 'the migration already made this month and the next three');
    assert.deepEqual([line.created, line.dropped, line.retentionDays], [[], [], 90]);
  });

  test('when the retention setting is invalid, then it exits 2 naming the variable', async () => {
    await assert.rejects(
      maintain({ EVENT_RETENTION_DAYS: '-1' }),
      (err: { code?: number; stderr?: string }) => {
        assert.equal(err.code, 2);
        assert.match(err.stderr ?? '', /EVENT_RETENTION_DAYS/);
        return true;
      },
    );
  });
});
