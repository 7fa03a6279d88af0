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

/** Socket errors of the client: the server cannot be reached right now. */
const networkCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EPIPE',
  'EAI_AGAIN',
]);

/**
 * SQLSTATEs that mean "the database cannot serve now, try again later", by class where the whole
 * class means it:
 * - 08 connection exception; 53 insufficient resources (too many connections, disk full, out of
 *   memory); 58 system error (I/O);
 * - 57P01–57P05 shutdown, crash, cannot connect now, idle session timeout; 57014 a statement
 *   cancelled by statement_timeout;
 * - 55000 object not in prerequisite state, as a starting, stopping or read-only server answers
 *   ("not accepting connections"); 55P03 a lock not granted in time;
 * - 28P01 and 28000 authentication failed: during a credential rotation the old password is
 *   refused until the pod reads the new one; a wrong password for good keeps /readyz failing.
 */
const unavailableStates = /^(?:08|53|58)|^57P0[1-5]$|^(?:57014|55000|55P03|28P01|28000)$/;

/**
 * True for failures that say "the database is not there right now" rather than "this query is
 * wrong". The API answers reads with 503 and the consumer retries the batch: one classification
 * for both.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'KnexTimeoutError') return true;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (networkCodes.has(code) || unavailableStates.test(code))) return true;
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
