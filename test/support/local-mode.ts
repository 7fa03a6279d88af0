import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findRunningLocalStacks, type LocalStackState, stateDir } from '../../local/state-file.ts';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** A temporary directory to run local mode in (as TMPDIR), reachable by PostgreSQL's `postgres` user. */
export function freshTmpDir(prefix = 'ingesta-local-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

export interface RunningLocalMode {
  child: ChildProcess;
  state: LocalStackState;
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Resolves once stdout matches. */
  waitForOutput(pattern: RegExp): Promise<RegExpExecArray>;
  /** Sends the signal (default SIGINT, as Ctrl-C) and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Runs `npm start`'s program (local/main.ts) as `npm start` does, with only PATH, HOME and the given
 * environment, and TMPDIR set to `tmp` so its temporary files and state file are the test's own.
 * Resolves once the banner is printed.
 */
export async function startLocalMode(
  tmp: string,
  options: { args?: string[]; env?: Record<string, string> } = {},
): Promise<RunningLocalMode> {
  const child = spawn(
    process.execPath,
    ['--import', './platform/telemetry/register.ts', 'local/main.ts', ...(options.args ?? [])],
    {
      cwd: repoRoot,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? tmp,
        TMPDIR: tmp,
        PORT: '0',
        ADMIN_PORT: '0',
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const l of [...listeners]) l();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const waitForOutput = (pattern: RegExp) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        const match = pattern.exec(stdout);
        if (match) {
          listeners.delete(check);
          resolve(match);
        }
      };
      listeners.add(check);
      void exited.then((code) => {
        if (listeners.delete(check)) {
          reject(new Error(`local mode exited with ${code} before ${pattern}:\n${stdout}\n${stderr}`));
        }
      });
      check();
    });
  await waitForOutput(/Ctrl-C stops everything\./);
  const state = findRunningLocalStacks(stateDir(tmp)).find((s) => s.pid === child.pid);
  if (!state) throw new Error(`no state file for pid ${child.pid} in ${stateDir(tmp)}`);
  return {
    child,
    state,
    stdout: () => stdout,
    waitForOutput,
    async stop(signal = 'SIGINT') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
