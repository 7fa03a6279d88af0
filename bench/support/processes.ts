import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The repository root: children run from it whatever the caller's working directory. */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on every Linux build that matters). */
const ticksPerSec = 100;

export interface BenchProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** The first JSON line that matched the readiness predicate. */
  readonly ready: Record<string, unknown>;
  /** Peak resident set size so far (VmHWM), in bytes. */
  peakRssBytes(): number;
  /** User plus system CPU time so far, in seconds. */
  cpuSec(): number;
  stop(): Promise<void>;
}

/** Children still running; an interrupted benchmark must not leave servers behind. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => process.exit(130));
}

/** Peak RSS of a live process from /proc, in bytes; 0 when it cannot be read. */
export function peakRssBytes(pid: number | undefined): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
    return kib ? Number(kib) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** CPU seconds (user + system) a live process has used; 0 when it cannot be read. */
export function cpuSec(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSec;
  } catch {
    return 0;
  }
}

/**
 * Spawns `node <args>` with exactly `env` (plus PATH) and resolves once it writes a JSON line that
 * satisfies `isReady`. Later lines are counted, not parsed: a process logging per request must not
 * make the benchmark's own process the bottleneck.
 */
export async function spawnNode(
  name: string,
  args: string[],
  env: Record<string, string>,
  isReady: (line: Record<string, unknown>) => boolean,
  timeoutMs = 60_000,
): Promise<BenchProcess> {
  const child = spawn(process.execPath, args, {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  const stderr: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (stderr.length < 200) stderr.push(line);
  });
  const exited = once(child, 'exit');
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    let found = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} not ready after ${timeoutMs} ms:\n${stderr.join('\n')}`));
    }, timeoutMs);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (found || !line.startsWith('{')) return;
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (isReady(parsed)) {
          found = true;
          clearTimeout(timer);
          resolve(parsed);
        }
      } catch {
        // not JSON: ignore
      }
    });
    void exited.then(([code]) => {
      clearTimeout(timer);
      if (!found) reject(new Error(`${name} exited with ${code} before it was ready:\n${stderr.join('\n')}`));
    });
  });
  return {
    name,
    child,
    ready,
    peakRssBytes: () => peakRssBytes(child.pid),
    cpuSec: () => cpuSec(child.pid),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * `node --import <telemetry register> <entry>/main.ts`, as the container runs it; `script` runs
 * another entry file of the same service in its place.
 */
export function spawnService(
  entry: 'api' | 'consumer',
  env: Record<string, string>,
  script = `${entry}/main.ts`,
): Promise<BenchProcess> {
  const readyMessage = entry === 'api' ? 'api listening' : 'consumer polling';
  // BENCH_CPU_PROF_DIR=<dir> writes a V8 CPU profile of every API and consumer process on exit.
  const profile = process.env.BENCH_CPU_PROF_DIR
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`]
    : [];
  return spawnNode(
    entry,
    [...profile, '--import', './platform/telemetry/register.ts', script],
    env,
    (line) => line.msg === readyMessage,
  );
}
