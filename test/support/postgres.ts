import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createDatabase, type Database } from '../../db/database.ts';
import type { EventRepository, StatsQuery } from '../../db/event-repository.ts';
import { migrateLatest } from '../../db/migrate.ts';
import { startEmbeddedPostgres } from '../../local/embedded-postgres.ts';

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/**
 * A fresh, empty database for one test file: a new database on `DATABASE_URL`'s server when set
 * (CI), otherwise an embedded PostgreSQL. Dropped afterwards.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    const embedded = await startEmbeddedPostgres();
    return { url: embedded.url, drop: () => embedded.stop() };
  }
  const name = `ingesta_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: serverUrl });
      await client.connect();
      try {
        await client.query(`drop database if exists ${name} with (force)`);
      } finally {
        await client.end();
      }
    },
  };
}

export interface ConnectedTestDatabase extends TestDatabase {
  /** A knex pool on it, as the processes make theirs (5 s statement timeout). */
  db: Database;
}

/**
 * `createTestDatabase()` with a pool on it, migrated to the latest schema unless `migrate` is false
 * (for tests that step through migrations). `drop()` closes the pool first.
 */
export async function connectTestDatabase(
  options: { migrate?: boolean; poolMax?: number } = {},
): Promise<ConnectedTestDatabase> {
  const database = await createTestDatabase();
  const db = createDatabase({
    url: database.url,
    poolMax: options.poolMax ?? 4,
    statementTimeoutMs: 5_000,
    applicationName: 'test',
  });
  if (options.migrate ?? true) await migrateLatest(db, database.url);
  return {
    url: database.url,
    db,
    async drop() {
      await db.destroy();
      await database.drop();
    },
  };
}

/** `repository.statsJson(query)` parsed: the buckets /v1/stats would answer with. */
export async function readStats(repository: EventRepository, query: StatsQuery): Promise<unknown> {
  return JSON.parse(Buffer.concat(await repository.statsJson(query)).toString());
}
