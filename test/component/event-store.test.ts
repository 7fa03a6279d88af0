import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Database } from '../../db/database.ts';
import { EventRepository, type NewEvent, type StatsQuery } from '../../db/event-repository.ts';
import { newEvent, parsedText } from '../support/events.ts';
import { type ConnectedTestDatabase, connectTestDatabase, readStats } from '../support/postgres.ts';

const event = (id: string, source: string, type: string, time: string): NewEvent =>
  newEvent({ specversion: '1.0', id, source, type, time, data: { n: id } });

/** The store's read paths against their own database: rollups per source and per type must agree. */
describe('event store', () => {
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

  test('when batches from several sources repeat events, then stats without a source count each event once across sources', async () => {
    const t = (m: number) => new Date(Date.UTC(2026, 0, 10, 8, m, 5)).toISOString();
    await Promise.all([
      repository.insertBatch([
        event('1', '/a', 'order.created', t(0)),
        event('2', '/b', 'order.created', t(0)),
        event('3', '/b', 'order.paid', t(1)),
      ]),
      repository.insertBatch([
        event('1', '/a', 'order.created', t(0)), // a redelivery
        event('4', '/c', 'order.created', t(1)),
      ]),
    ]);
    await repository.insertBatch([event('2', '/b', 'order.created', t(0))]);
    const range = { from: '2026-01-10T00:00:00Z', to: '2026-01-11T00:00:00Z' };

    assert.deepEqual(await stats({ ...range, bucket: 'minute' }), [
      { start: '2026-01-10T08:00:00.000000Z', type: 'order.created', count: 2 },
      { start: '2026-01-10T08:01:00.000000Z', type: 'order.created', count: 1 },
      { start: '2026-01-10T08:01:00.000000Z', type: 'order.paid', count: 1 },
    ]);
    assert.deepEqual(await stats({ ...range, bucket: 'hour', type: 'order.created' }), [
      { start: '2026-01-10T08:00:00.000000Z', type: 'order.created', count: 3 },
    ]);
    assert.deepEqual(await stats({ ...range, bucket: 'day', source: '/b' }), [
      { start: '2026-01-10T00:00:00.000000Z', type: 'order.created', count: 1 },
      { start: '2026-01-10T00:00:00.000000Z', type: 'order.paid', count: 1 },
    ]);
    // Whole buckets: `from` is rounded down to its bucket, and a bucket starting before `to` counts.
    const inside = { from: '2026-01-10T08:00:30Z', to: '2026-01-10T08:00:40Z', bucket: 'minute' as const };
    assert.deepEqual(await stats({ ...inside, type: 'order.created' }), [
      { start: '2026-01-10T08:00:00.000000Z', type: 'order.created', count: 2 },
    ]);
    assert.deepEqual(
      await stats({ from: '2026-01-10T08:00:00Z', to: '2026-01-10T08:01:00Z', bucket: 'minute' }),
      [{ start: '2026-01-10T08:00:00.000000Z', type: 'order.created', count: 2 }],
      'bounds on bucket edges are exact: the 08:01 bucket is left out',
    );
  });

  test('when a page is taken from the middle, then pages continue newest first without gaps or repeats', async () => {
    const t = (s: number) => new Date(Date.UTC(2026, 1, 1, 0, 0, s)).toISOString();
    // Two events share a timestamp: the keyset's seq breaks the tie.
    await repository.insertBatch([0, 1, 2, 2, 3].map((s, i) => event(`p${i}`, '/pages', 'page.test', t(s))));
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await repository.list({ source: '/pages' }, 2, cursor);
      seen.push(...page.items.map((e) => parsedText(e).id));
      cursor = page.nextCursor;
    } while (cursor);
    assert.deepEqual(seen, ['p4', 'p3', 'p2', 'p1', 'p0']);
  });

  test('when concurrent batches share a statement, then each learns its own new rows and a repeated event counts once', async () => {
    const t = new Date(Date.UTC(2026, 2, 1)).toISOString();
    const batches = Array.from({ length: 6 }, (_, b) =>
      Array.from({ length: 5 }, (_, i) => event(`m${b}-${i}`, '/merge', 'merge.test', t)),
    );
    // Two run at once and the other four share one statement; these repeat an event of a batch in
    // the same statement and of one in the other.
    batches[5]?.push(event('m3-0', '/merge', 'merge.test', t), event('m0-0', '/merge', 'merge.test', t));
    const results = await Promise.all(batches.map((batch) => repository.insertBatch(batch)));
    const credited = results.flatMap((r) => r.inserted.map((e) => e.id));
    assert.equal(credited.length, 30, 'every distinct event credited exactly once');
    assert.equal(new Set(credited).size, 30);
    for (const [b, r] of results.entries()) {
      for (const e of r.inserted)
        assert.ok(
          batches[b]?.some((n) => n.event.id === e.id),
          'only rows of its own batch',
        );
    }
    assert.deepEqual(
      await stats({ from: t, to: '2026-03-02T00:00:00Z', bucket: 'day', type: 'merge.test' }),
      [{ start: '2026-03-01T00:00:00.000000Z', type: 'merge.test', count: 30 }],
    );
  });

  test('when a batch sharing a statement holds a row PostgreSQL refuses, then only that batch fails', async () => {
    const t = new Date(Date.UTC(2026, 3, 1)).toISOString();
    const good = (b: number) => [
      event(`r${b}-a`, '/refuse', 'refuse.test', t),
      event(`r${b}-b`, '/refuse', 'refuse.test', t),
    ];
    // The contract lets through only what the schema stores; a constraint added by hand stands for
    // a row PostgreSQL refuses all the same.
    await db.raw("alter table events add constraint refuse_test check (id <> 'r-refused')");
    const poisoned = [
      event('r-ok', '/refuse', 'refuse.test', t),
      event('r-refused', '/refuse', 'refuse.test', t),
    ];
    const outcomes = await Promise.allSettled([
      repository.insertBatch(good(0)),
      repository.insertBatch(good(1)),
      repository.insertBatch(good(2)),
      repository.insertBatch(poisoned),
      repository.insertBatch(good(3)),
    ]);
    await db.raw('alter table events drop constraint refuse_test');
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled'],
    );
    const page = await repository.list({ source: '/refuse' }, 100);
    assert.deepEqual(page.items.map((e) => parsedText(e).id).sort(), [
      'r0-a',
      'r0-b',
      'r1-a',
      'r1-b',
      'r2-a',
      'r2-b',
      'r3-a',
      'r3-b',
    ]);
  });
});
