import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { findRunningLocalStacks, type LocalStackState, stateDir } from '../../local/state-file.ts';
import { runInTerminal, type TerminalRun } from '../support/terminal.ts';

/**
 * `npm start` in a real terminal, stopped the ways a person or a tool stops it. Each run gets a
 * temporary directory of its own (TMPDIR), so what it leaves behind can be counted.
 */
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
/** What the issue promises: an idle local stack is gone this soon after the signal. */
const exitBudgetMs = 2_000;

function freshTmpDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ingesta-terminal-'));
  chmodSync(dir, 0o755); // PostgreSQL runs as `postgres` under root and must reach its directory
  return dir;
}

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'exit');
  return child.pid ?? 1;
}

/** Resolves with whether something accepts connections on the port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function startInTerminal(tmp: string): Promise<{ term: TerminalRun; state: LocalStackState }> {
  const term = runInTerminal(['npm', 'start'], {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? tmp,
      TMPDIR: tmp,
      PORT: '0',
      ADMIN_PORT: '0',
      npm_config_update_notifier: 'false',
      npm_config_fund: 'false',
    },
  });
  await term.waitForOutput(/Ctrl-C stops everything\./);
  const [state] = findRunningLocalStacks(stateDir(tmp));
  assert.ok(state, `a state file in ${stateDir(tmp)}`);
  return { term, state };
}

/** Sends `action`, then checks the stack is gone within the budget and left nothing behind. */
async function stopAndCheck(tmp: string, action: 'ctrl-c' | 'term' | 'hup', t: TestContext) {
  const { term, state } = await startInTerminal(tmp);
  try {
    const ports = [
      new URL(state.apiUrl).port,
      state.adminPorts.api,
      state.adminPorts.consumer,
      new URL(state.awsEndpointUrl).port,
      state.postgres.port,
    ].map(Number);
    assert.ok(state.postgres.pid, 'PostgreSQL has a process id');
    const nodeGone = term.whenGone(state.pid);
    const postgresGone = term.whenGone(state.postgres.pid ?? 0);
    const sentAt = await term.send(action);
    const [nodeAt, postgresAt] = await Promise.all([nodeGone, postgresGone]);
    assert.ok(nodeAt - sentAt <= exitBudgetMs, `ingesta exited ${nodeAt - sentAt} ms after ${action}`);
    assert.ok(
      postgresAt - sentAt <= exitBudgetMs,
      `PostgreSQL exited ${postgresAt - sentAt} ms after ${action}`,
    );
    const npm = await term.exited;
    t.diagnostic(
      `after ${action}: ingesta gone in ${nodeAt - sentAt} ms, PostgreSQL in ${postgresAt - sentAt} ms, npm exited ${npm.code} in ${npm.atMs - sentAt} ms`,
    );
    assert.ok(npm.atMs - sentAt <= exitBudgetMs, `npm exited ${npm.atMs - sentAt} ms after ${action}`);
    if (action === 'ctrl-c') assert.equal(npm.code, 0, `npm start exits 0 after Ctrl-C:\n${term.output()}`);
    if (action !== 'hup') {
      // The terminal is still there to read: the drain finished, nothing failed or timed out.
      assert.match(term.output(), /"msg":"shutdown complete"/);
      assert.doesNotMatch(term.output(), /shutdown step failed|deadline passed/);
    }
    assert.deepEqual(
      readdirSync(tmp).filter((n) => n.startsWith('ingesta-pg-')),
      [],
      'the temporary database is removed',
    );
    assert.deepEqual(readdirSync(stateDir(tmp)), [], 'the state file is removed');
    for (const port of ports) assert.equal(await listening(port), false, `nothing listens on ${port}`);
  } finally {
    await term.close();
  }
}

describe('npm start in a terminal', { timeout: 180_000 }, () => {
  test('when Ctrl-C is typed, then everything stops within 2 s, exit code 0, nothing left behind; stale temporary databases of dead runs are removed at start', async (t) => {
    const tmp = freshTmpDir();
    try {
      const stale = join(tmp, 'ingesta-pg-stale');
      mkdirSync(join(stale, 'data'), { recursive: true });
      writeFileSync(join(stale, 'owner.pid'), `${await deadPid()}\n`);
      writeFileSync(join(stale, 'data', 'postmaster.pid'), `${await deadPid()}\n`);
      await stopAndCheck(tmp, 'ctrl-c', t);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('when the npm process gets SIGTERM (an IDE, a process manager), then everything stops within 2 s', async (t) => {
    const tmp = freshTmpDir();
    try {
      await stopAndCheck(tmp, 'term', t);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('when the terminal closes (SIGHUP), then everything stops within 2 s', async (t) => {
    const tmp = freshTmpDir();
    try {
      await stopAndCheck(tmp, 'hup', t);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
