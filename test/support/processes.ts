import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export interface RunningProcess {
  child: ChildProcess;
  /** Every JSON log line the process wrote so far. */
  logs: Record<string, unknown>[];
  /** Every line written to stderr so far. */
  stderr: string[];
  /** Every stdout line that is not a JSON log line (e.g. the console span exporter's output). */
  otherStdout: string[];
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** Resolves with the first log line matching, including ones already written. */
  waitForLog(predicate: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Runs an entry point as its own process, the way the container does: `node --import
 * <telemetry register> <main>`, with only the given environment (plus PATH).
 */
export function spawnEntry(entry: 'api' | 'consumer', env: Record<string, string>): RunningProcess {
  const child = spawn(
    process.execPath,
    ['--import', './platform/telemetry/register.ts', `${entry}/main.ts`],
    { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const logs: Record<string, unknown>[] = [];
  const waiters: {
    predicate: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }[] = [];
  const stderr: string[] = [];
  const otherStdout: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      otherStdout.push(line); // e.g. the console span exporter
      return;
    }
    logs.push(parsed);
    for (const w of waiters.splice(0)) {
      if (w.predicate(parsed)) w.resolve(parsed);
      else waiters.push(w);
    }
  });
  const exited = once(child, 'exit') as Promise<[number | null]>;
  return {
    child,
    logs,
    stderr,
    otherStdout,
    exited: exited.then(([code]) => code),
    waitForLog(predicate) {
      const seen = logs.find(predicate);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiters.push({ predicate, resolve });
        void exited.then(([code]) =>
          reject(
            new Error(`${entry} exited with ${code} before the expected log line:\n${stderr.join('\n')}`),
          ),
        );
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = await exited;
      return code;
    },
  };
}
