import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createDatabase } from '../../db/database.ts';
import { migrateLatest } from '../../db/migrate.ts';
import { createPartitions } from '../../db/partitions.ts';
import { startEmbeddedPostgres } from '../../local/embedded-postgres.ts';
import { type BenchProcess, spawnNode } from './processes.ts';

export interface DatabaseServer {
  /** Where it came from, for the report: the server named by DATABASE_URL, or an embedded one. */
  kind: 'DATABASE_URL' | 'embedded';
  url: string;
  stop(): Promise<void>;
}

/** DATABASE_URL's server when set (CI), otherwise an embedded PostgreSQL for the run. */
export async function startDatabaseServer(): Promise<DatabaseServer> {
  const url = process.env.DATABASE_URL;
  if (url) return { kind: 'DATABASE_URL', url, stop: async () => {} };
  const embedded = await startEmbeddedPostgres();
  return { kind: 'embedded', url: embedded.url, stop: () => embedded.stop() };
}

export interface BenchDatabase {
  url: string;
  /** A plain pg client for setup, counts and baselines (no statement timeout). */
  query<R extends pg.QueryResultRow = Record<string, unknown>>(sql: string, values?: unknown[]): Promise<R[]>;
  drop(): Promise<void>;
}

/** A fresh database on the server with ingesta's migrations applied; dropped by `drop()`. */
export async function createBenchDatabase(server: DatabaseServer): Promise<BenchDatabase> {
  const name = `ingesta_bench_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(server.url);
  url.pathname = `/${name}`;
  const migrator = createDatabase({
    url: url.toString(),
    poolMax: 1,
    statementTimeoutMs: 600_000,
    applicationName: 'ingesta-bench',
  });
  try {
    await migrateLatest(migrator, url.toString());
    // The migration makes this month and the next ones; generated history reaches back two months.
    const day = 86_400_000;
    await createPartitions(
      migrator,
      [Date.now() - 62 * day, Date.now() - 31 * day].map((t) => new Date(t)),
    );
  } finally {
    await migrator.destroy();
  }
  const client = new pg.Client({ connectionString: url.toString(), application_name: 'ingesta-bench' });
  await client.connect();
  return {
    url: url.toString(),
    async query(sql, values) {
      return (await client.query(sql, values)).rows;
    },
    async drop() {
      await client.end();
      const admin = new pg.Client({ connectionString: server.url });
      await admin.connect();
      try {
        await admin.query(`drop database if exists ${name} with (force)`);
      } finally {
        await admin.end();
      }
    },
  };
}

export interface Emulator extends BenchProcess {
  endpoint: string;
  region: string;
  topicArn: string;
  queueUrl: string;
  dlqUrl: string;
}

/** The SNS/SQS emulator (fauxqs) in its own process, with ingesta's topic, queue and DLQ created. */
export async function startEmulator(): Promise<Emulator> {
  const proc = await spawnNode(
    'emulator',
    ['bench/support/emulator-main.ts'],
    {},
    (l) => l.msg === 'emulator ready',
  );
  const r = proc.ready as Record<string, string>;
  return Object.assign(proc, {
    endpoint: r.endpoint as string,
    region: r.region as string,
    topicArn: r.topicArn as string,
    queueUrl: r.queueUrl as string,
    dlqUrl: r.dlqUrl as string,
  });
}

/** The environment the API and the consumer need to run against these backends. */
export function serviceEnv(database: BenchDatabase, emulator: Emulator): Record<string, string> {
  return {
    DATABASE_URL: database.url,
    AUTH_DISABLED: 'true',
    AWS_REGION: emulator.region,
    AWS_ENDPOINT_URL: emulator.endpoint,
    INGEST_TOPIC_ARN: emulator.topicArn,
    INGEST_QUEUE_URL: emulator.queueUrl,
    INGEST_DLQ_URL: emulator.dlqUrl,
    PORT: '0',
    ADMIN_PORT: '0',
    // One load generator is one principal: the per-principal limit would turn the benchmark into a 429 test.
    RATE_LIMIT_PER_MINUTE: '10000000',
  };
}
