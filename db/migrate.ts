import type { Knex } from 'knex';
import pg from 'pg';
import * as eventStore from './migrations/0001-event-store.ts';
import * as rollupsByType from './migrations/0002-rollups-by-type.ts';
import * as monthlyPartitions from './migrations/0003-monthly-partitions.ts';
import * as countSeries from './migrations/0004-count-series.ts';
import * as eventText from './migrations/0005-event-text.ts';
import * as auditSamples from './migrations/0006-audit-samples.ts';
import * as partitionFunction from './migrations/0006-partition-function.ts';
import * as replays from './migrations/0007-replays.ts';

/** Migrations by name, in order. Listed explicitly so the same code runs from sources and from dist/. */
const migrations: Record<string, Knex.Migration> = {
  '0001-event-store': eventStore,
  '0002-rollups-by-type': rollupsByType,
  '0003-monthly-partitions': monthlyPartitions,
  '0004-count-series': countSeries,
  '0005-event-text': eventText,
  '0006-audit-samples': auditSamples,
  '0006-partition-function': partitionFunction,
  '0007-replays': replays,
};

const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(migrations),
  getMigrationName: (name) => name,
  getMigration: async (name) => {
    const migration = migrations[name];
    if (!migration) throw new Error(`unknown migration ${name}`);
    return migration;
  },
};

/** Where knex finds ingesta's migrations and records them; for tests that step through them one by one. */
export const migratorConfig: Knex.MigratorConfig = { migrationSource, tableName: 'ingesta_migrations' };

/** Arbitrary but fixed: every ingesta migrator in the database takes the same advisory lock. */
const advisoryLockKey = 4_815_162_342;

/**
 * Runs `work` while holding a PostgreSQL session advisory lock, so migrators started together (two
 * pods, two hook retries) wait for each other instead of racing knex's own non-blocking lock.
 */
async function withMigrationLock<T>(databaseUrl: string, work: () => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'ingesta-migrate' });
  await client.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [advisoryLockKey]);
    return await work();
  } finally {
    await client.query('select pg_advisory_unlock($1)', [advisoryLockKey]).catch(() => undefined);
    await client.end();
  }
}

/** Applies pending migrations; returns the names applied (empty when already up to date). */
export async function migrateLatest(db: Knex, databaseUrl: string): Promise<string[]> {
  return withMigrationLock(databaseUrl, async () => {
    const [, applied] = (await db.migrate.latest(migratorConfig)) as [number, string[]];
    return applied;
  });
}

/** Rolls back the last batch of migrations; returns the names rolled back. */
export async function migrateRollback(db: Knex, databaseUrl: string): Promise<string[]> {
  return withMigrationLock(databaseUrl, async () => {
    const [, rolledBack] = (await db.migrate.rollback(migratorConfig)) as [number, string[]];
    return rolledBack;
  });
}
