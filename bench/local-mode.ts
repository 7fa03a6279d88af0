/**
 * Local mode (`npm start`) under B1's load: single events, 32 connections, against the whole stack
 * on one machine (API, consumer storing every event, emulator, embedded PostgreSQL). Beside it, in
 * interleaved rounds, the same parts in pod shape: the API, the consumer and the emulator each a
 * process of its own, against an embedded PostgreSQL as well (or DATABASE_URL's server). With
 * `--checkout DIR` (repeatable) it also loads other checkouts' `npm start`, so a change of layout
 * is measured against the one before it in the same spells of noise.
 *
 *   npm run bench:local [-- --quick] [-- --checkout /path/to/other/checkout]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createBenchDatabase, serviceEnv, startDatabaseServer, startEmulator } from './support/backends.ts';
import { createOrderEvents, runPrefix } from './support/events.ts';
import { ingestDurations } from './support/ingest-run.ts';
import { type LoadResult, runLoad } from './support/load.ts';
import { repoRoot, spawnService } from './support/processes.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    checkout: { type: 'string', multiple: true, default: [] },
  },
});
const connections = 32;
const { warmUpSec, measureSec, rounds } = ingestDurations(values.quick ?? false);
const podShape = 'pod shape';
const targets = [repoRoot, podShape, ...(values.checkout ?? [])];

/** API, consumer and emulator as processes of their own, as on EKS; resolves with the API's port. */
async function startPodShape() {
  const server = await startDatabaseServer();
  const database = await createBenchDatabase(server);
  const emulator = await startEmulator();
  const env = serviceEnv(database, emulator);
  const [api, consumer] = await Promise.all([spawnService('api', env), spawnService('consumer', env)]);
  return {
    port: Number(api.ready.port),
    async stop() {
      await Promise.all([api.stop(), consumer.stop()]);
      await emulator.stop();
      await database.drop();
      await server.stop();
    },
  };
}

/** Starts a checkout's `npm start` program; resolves with its API port and how to stop it. */
async function startLocal(dir: string) {
  const tmp = mkdtempSync(join(tmpdir(), 'ingesta-bench-local-'));
  chmodSync(tmp, 0o755);
  const child = spawn(process.execPath, ['--import', './platform/telemetry/register.ts', 'local/main.ts'], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? '',
      TMPDIR: tmp,
      PORT: '0',
      ADMIN_PORT: '0',
      // One load generator is one principal.
      RATE_LIMIT_PER_MINUTE: '10000000',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const found = /API\s+http:\/\/localhost:(\d+)/.exec(out);
      if (found && out.includes('Ctrl-C stops everything.')) resolve(Number(found[1]));
    });
    child.once('exit', (code) => reject(new Error(`${dir}: local mode exited with ${code}:\n${out}`)));
  });
  child.stdout.resume();
  return {
    port,
    async stop() {
      child.kill('SIGINT');
      await once(child, 'exit');
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

const results = new Map<string, LoadResult[]>(targets.map((c) => [c, []]));
for (let round = 0; round < rounds; round++) {
  for (const dir of targets) {
    const local = dir === podShape ? await startPodShape() : await startLocal(dir);
    try {
      const nextEvent = createOrderEvents(runPrefix('local'));
      const load = (durationSec: number) =>
        runLoad({
          url: `http://127.0.0.1:${local.port}/v1/events`,
          connections,
          durationSec,
          contentType: 'application/cloudevents+json',
          body: () => JSON.stringify(nextEvent()),
        });
      await load(warmUpSec);
      const result = await load(measureSec);
      results.get(dir)?.push(result);
      process.stderr.write(`${dir} round ${round + 1}: ${Math.round(result.okPerSec)} req/s\n`);
    } finally {
      await local.stop();
    }
  }
}

process.stdout.write('| target | best req/s | rounds (req/s) | p50 ms | p99 ms | errors + non-2xx |\n');
process.stdout.write('| --- | --- | --- | --- | --- | --- |\n');
for (const [dir, runs] of results) {
  const best = runs.reduce((a, b) => (b.okPerSec > a.okPerSec ? b : a));
  process.stdout.write(
    `| ${dir === repoRoot ? 'npm start (this checkout)' : dir === podShape ? podShape : `npm start (${dir})`} | ${Math.round(best.okPerSec)} | ${runs.map((r) => Math.round(r.okPerSec)).join(' / ')} | ${best.p50Ms} | ${best.p99Ms} | ${runs.reduce((n, r) => n + r.errors + r.non2xx, 0)} |\n`,
  );
}
