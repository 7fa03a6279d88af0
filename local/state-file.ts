import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isProcessAlive } from './processes.ts';

/**
 * What a running `npm start` tells the other tools (`npm run dlq`): where each part listens. One
 * small JSON file per running local stack, written once everything is up and removed at stop.
 */
export interface LocalStackState {
  pid: number;
  startedAt: string;
  apiUrl: string;
  adminPorts: { api: number; consumer: number };
  awsRegion: string;
  awsEndpointUrl: string;
  topicArn: string;
  queueUrl: string;
  dlqUrl: string;
  postgres: { pid: number | undefined; port: number };
  /** Set when the database is kept across runs. */
  dataDir: string | undefined;
}

/** Where the state files live: one directory per machine user, under the system temp dir. */
export function stateDir(parent = tmpdir()): string {
  return join(parent, `ingesta-local-${process.getuid?.() ?? 'user'}`);
}

/** Writes this process's state file; resolves with a function that removes it. */
export function writeStateFile(state: LocalStackState, dir = stateDir()): { path: string; remove(): void } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${state.pid}.json`);
  writeFileSync(path, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  return { path, remove: () => rmSync(path, { force: true }) };
}

/**
 * The local stacks running now, newest first. State files of processes that are gone (killed with
 * SIGKILL, say) are removed on the way.
 */
export function findRunningLocalStacks(dir = stateDir()): LocalStackState[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => /^\d+\.json$/.test(n));
  } catch {
    return [];
  }
  const running: LocalStackState[] = [];
  for (const name of names) {
    const path = join(dir, name);
    let state: LocalStackState;
    try {
      state = JSON.parse(readFileSync(path, 'utf8')) as LocalStackState;
    } catch {
      continue; // being written, or not ours
    }
    if (isProcessAlive(state.pid)) running.push(state);
    else rmSync(path, { force: true });
  }
  return running.sort((a, b) => b.startedAt.localeCompare(a.startedAt));
}

/** The environment the consumer-side tools need to reach a local stack's queues. */
export function localStackEnv(state: LocalStackState): Record<string, string> {
  return {
    AWS_REGION: state.awsRegion,
    AWS_ENDPOINT_URL: state.awsEndpointUrl,
    INGEST_TOPIC_ARN: state.topicArn,
    INGEST_QUEUE_URL: state.queueUrl,
    INGEST_DLQ_URL: state.dlqUrl,
  };
}
