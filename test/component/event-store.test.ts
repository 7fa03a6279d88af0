import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createDatabase, type Database } from '../../db/database.ts';
import { EventRepository, type NewEvent } from '../../db/event-repository.ts';
import { migrateLatest } from '../../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';

const event = (id: string, source: string, type: string, time: string): NewEvent => ({
  event: { specversion: '1.0', id, source, type, time, data: { n: id } },
  acceptedAtMs: Date.parse(time),
});

/** The store's read paths against their own database: rollups per source and per type must agree. */
describe('event store', () => {
  let database: TestDatabase;
  let db: Database;
  let repository: EventRepository;

  before(async () => {
    database = await createTestDatabase();
    db = createDatabase({
      url: database.url,
      poolMax: 4,
      statementTimeoutMs: 5_000,
      applicationName: 'test',
    });
    await migrateLatest(db, database.url);
    repository = new EventRepository(db);
  });
  after(async () => {
    await db.destroy();
    await database.drop();
  });

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

    assert.deepEqual(await repository.stats({ ...range, bucket: 'minute' }), [
      { start: '2026-01-10T08:00:00.000000Z', type: 'order.created', count: 2 },
      { start: '2026-01-10T08:01:00.000000Z', type: 'order.created', count: 1 },
      { start: '2026-01-10T08:01:00.000000Z', type: 'order.paid', count: 1 },
    ]);
    assert.deepEqual(await repository.stats({ ...range, bucket: 'hour', type: 'order.created' }), [
      { start: '2026-01-10T08:00:00.000000Z', type: 'order.created', count: 3 },
    ]);
    assert.deepEqual(await repository.stats({ ...range, bucket: 'day', source: '/b' }), [
      { start: '2026-01-10T00:00:00.000000Z', type: 'order.created', count: 1 },
      { start: '2026-01-10T00:00:00.000000Z', type: 'order.paid', count: 1 },
    ]);
  });

  test('when a page is taken from the middle, then pages continue newest first without gaps or repeats', async () => {
    const t = (s: number) => new Date(Date.UTC(2026, 1, 1, 0, 0, s)).toISOString();
    // Two events share a timestamp: the keyset's seq breaks the tie.
    await repository.insertBatch([0, 1, 2, 2, 3].map((s, i) => event(`p${i}`, '/pages', 'page.test', t(s))));
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await repository.list({ source: '/pages' }, 2, cursor);
      seen.push(...page.items.map((e) => e.id));
      cursor = page.nextCursor;
    } while (cursor);
    assert.deepEqual(seen, ['p4', 'p3', 'p2', 'p1', 'p0']);
  });
});
