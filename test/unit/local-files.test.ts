import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { removeStaleTemporaryDirs } from '../../local/embedded-postgres.ts';
import { findRunningLocalStacks, type LocalStackState, writeStateFile } from '../../local/state-file.ts';

const parent = mkdtempSync(join(tmpdir(), 'ingesta-local-files-'));
after(() => rmSync(parent, { recursive: true, force: true }));

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'exit');
  return child.pid ?? 1;
}

function tempDir(name: string, files: Record<string, string>, ageMs = 0): string {
  const dir = join(parent, name);
  mkdirSync(join(dir, 'data'), { recursive: true });
  for (const [file, content] of Object.entries(files)) writeFileSync(join(dir, file), content);
  const at = new Date(Date.now() - ageMs);
  utimesSync(dir, at, at);
  return dir;
}

describe('temporary databases of earlier runs', () => {
  test('when their owner and PostgreSQL are gone, then they are removed; live, fresh or foreign ones are kept', async () => {
    const dead = await deadPid();
    tempDir('ingesta-pg-dead-owner', { 'owner.pid': `${dead}\n` });
    tempDir('ingesta-pg-live-owner', { 'owner.pid': `${process.pid}\n` });
    tempDir('ingesta-pg-live-postgres', {
      'owner.pid': `${dead}\n`,
      'data/postmaster.pid': `${process.pid}\n`,
    });
    tempDir('ingesta-pg-old-unowned', {}, 10 * 60_000);
    tempDir('ingesta-pg-new-unowned', {});
    tempDir('something-else', { 'owner.pid': `${dead}\n` });
    const removed = removeStaleTemporaryDirs(parent).map((d) => d.slice(parent.length + 1));
    assert.deepEqual(removed.sort(), ['ingesta-pg-dead-owner', 'ingesta-pg-old-unowned']);
    assert.deepEqual(readdirSync(parent).sort(), [
      'ingesta-pg-live-owner',
      'ingesta-pg-live-postgres',
      'ingesta-pg-new-unowned',
      'something-else',
    ]);
  });
});

describe('local stack state files', () => {
  const state = (pid: number, startedAt: string): LocalStackState => ({
    pid,
    startedAt,
    apiUrl: 'http://localhost:8080',
    adminPorts: { api: 9464, consumer: 9465 },
    awsRegion: 'us-east-1',
    awsEndpointUrl: 'http://127.0.0.1:4566',
    topicArn: 'arn:aws:sns:us-east-1:000000000000:ingesta-events',
    queueUrl: 'http://127.0.0.1:4566/000000000000/ingesta-events',
    dlqUrl: 'http://127.0.0.1:4566/000000000000/ingesta-events-dlq',
    postgres: { pid: undefined, port: 5432 },
    dataDir: undefined,
  });

  test('when a stack runs, then it is found; when its process is gone, then its file is removed', async () => {
    const dir = join(parent, 'state');
    const live = writeStateFile(state(process.pid, '2026-12-08T10:00:00.000Z'), dir);
    writeStateFile(state(await deadPid(), '2026-12-08T11:00:00.000Z'), dir);
    assert.deepEqual(
      findRunningLocalStacks(dir).map((s) => s.pid),
      [process.pid],
    );
    assert.deepEqual(readdirSync(dir), [`${process.pid}.json`], 'the dead stack’s file is gone');
    live.remove();
    assert.deepEqual(findRunningLocalStacks(dir), []);
  });
});
