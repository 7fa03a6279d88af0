import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { MessagingResources } from '../../../local/emulator.ts';

const mainScript = fileURLToPath(new URL('./emulator-main.ts', import.meta.url));

export interface EmulatorProcess extends MessagingResources {
  endpoint: string;
  region: string;
  /** Kills the process (SIGKILL by default: a crash) and resolves once it is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /**
   * Starts it again on the same port (and, when persistent, with the same state); resolves once it
   * serves requests.
   */
  restart(): Promise<void>;
  /** Stops it and removes its state. */
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

interface Ready extends MessagingResources {
  endpoint: string;
  region: string;
}

function launch(port: number, dataDir: string | undefined): Promise<{ child: ChildProcess; ready: Ready }> {
  const args = [mainScript, '--port', String(port), ...(dataDir ? ['--data-dir', dataDir] : [])];
  const child = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stderr: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line));
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as Ready & { msg?: string };
        if (parsed.msg === 'emulator ready') resolve({ child, ready: parsed });
      } catch {
        // not a JSON line
      }
    });
    child.once('exit', (code) =>
      reject(new Error(`emulator exited with ${code} before it was ready:\n${stderr.join('\n')}`)),
    );
  });
}

/**
 * The SNS/SQS emulator (fauxqs, with ingesta's topic, queue, DLQ and subscription) in a process of
 * its own on a fixed loopback port. When `persistent`, its state is on disk: killed and restarted, it
 * comes back with the messages it held, as AWS would after an outage.
 */
export async function startEmulatorProcess(options: { persistent?: boolean } = {}): Promise<EmulatorProcess> {
  const dataDir = options.persistent ? mkdtempSync(join(tmpdir(), 'ingesta-faults-sqs-')) : undefined;
  if (dataDir) chmodSync(dataDir, 0o700);
  const port = await freePort();
  let { child, ready } = await launch(port, dataDir);
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill(signal);
    await exited;
  };
  return {
    ...ready,
    kill,
    async restart() {
      await kill();
      ({ child, ready } = await launch(port, dataDir));
    },
    async destroy() {
      await kill();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
