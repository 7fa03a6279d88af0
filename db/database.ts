import knex, { type Knex } from 'knex';
import type { Logger } from '../platform/logger.ts';
import type { Metrics } from '../platform/metrics.ts';

export type Database = Knex;

export interface DatabaseOptions {
  url: string;
  poolMax: number;
  statementTimeoutMs: number;
  applicationName: string;
  /** Where knex's own warnings go (pool acquire errors during an outage); default: dropped. */
  log?: Logger;
}

/**
 * One pool per process. Every session runs in UTC with a statement timeout, and a connection that
 * cannot be had quickly fails fast, so an outage turns into 503s instead of piled-up requests.
 */
export function createDatabase(options: DatabaseOptions): Database {
  return knex({
    client: 'pg',
    connection: {
      connectionString: options.url,
      application_name: options.applicationName,
      statement_timeout: options.statementTimeoutMs,
      connectionTimeoutMillis: Math.min(options.statementTimeoutMs, 5_000),
      options: '-c TimeZone=UTC',
    },
    pool: { min: 0, max: options.poolMax, idleTimeoutMillis: 30_000 },
    acquireConnectionTimeout: Math.min(options.statementTimeoutMs, 5_000),
    log: {
      warn: (message: unknown) => options.log?.warn({ knex: String(message) }, 'database warning'),
      error: (message: unknown) => options.log?.warn({ knex: String(message) }, 'database error'),
      debug: () => {},
      deprecate: () => {},
    },
  });
}

interface TarnPool {
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
}

/** Samples pool saturation on every scrape. */
export function observePool(db: Database, metrics: Metrics): void {
  const pool = (db.client as { pool?: TarnPool }).pool;
  metrics.dbPool.reset();
  const sample = () => {
    const current = (db.client as { pool?: TarnPool }).pool ?? pool;
    metrics.dbPool.set({ state: 'used' }, current?.numUsed() ?? 0);
    metrics.dbPool.set({ state: 'idle' }, current?.numFree() ?? 0);
    metrics.dbPool.set({ state: 'waiting' }, current?.numPendingAcquires() ?? 0);
  };
  sample();
  (metrics.dbPool as unknown as { collect?: () => void }).collect = sample;
}

const unavailableCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EPIPE',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '57014', // query_canceled (statement_timeout)
  '08000',
  '08001',
  '08003',
  '08006',
  '53300', // too_many_connections
]);

/** True for failures that say "the database is not there right now" rather than "this query is wrong". */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'KnexTimeoutError') return true;
  const code = (err as { code?: string }).code;
  if (code && unavailableCodes.has(code)) return true;
  if (
    /Connection terminated|connect ECONNREFUSED|timeout exceeded when trying to connect/i.test(err.message)
  ) {
    return true;
  }
  return err.cause !== undefined && isDatabaseUnavailable(err.cause);
}

/**
 * True when PostgreSQL refused the data itself (SQLSTATE class 22, data exception, or 23, integrity
 * constraint violation): the same row fails the same way every time. Anything else (a schema that
 * does not match the code during an upgrade, a permission, a lock timeout) is about the database,
 * not the row, and the row is worth another try.
 */
export function isRowRefused(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^2[23]/.test(code);
}
