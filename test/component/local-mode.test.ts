import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, rmSync } from 'node:fs';
import { test } from 'node:test';
import { stateDir } from '../../local/state-file.ts';
import { freshTmpDir } from '../support/local-mode.ts';

/**
 * The front door: `npm start` with nothing configured. Runs local/main.ts as `npm start` does, then
 * does what its banner says: the printed POST, then the printed GET, which returns the event.
 */
test('when started with nothing configured, then the printed curl commands store an event and read it back', {
  timeout: 120_000,
}, async () => {
  // Its own TMPDIR: the temporary database and the state file are the test's, not shared.
  const tmp = freshTmpDir();
  const child = spawn(process.execPath, ['--import', './platform/telemetry/register.ts', 'local/main.ts'], {
    env: { PATH: process.env.PATH ?? '', PORT: '0', ADMIN_PORT: '0', TMPDIR: tmp },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  const bannerShown = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes('Ctrl-C stops everything.')) resolve();
    });
    child.once('exit', (code) =>
      reject(new Error(`local mode exited with ${code} before its banner:\n${stdout}`)),
    );
  });
  try {
    await bannerShown;
    assert.match(stdout, /Authentication is OFF in local mode/);
    const post = /curl -i -X POST (\S+) -H '([^:]+): ([^']+)' \\\n\s+-d '([^']+)'/.exec(stdout);
    assert.ok(post, `a POST command in the banner:\n${stdout}`);
    const [, postUrl, header, contentType, body] = post;
    const accepted = await fetch(postUrl!, { method: 'POST', headers: { [header!]: contentType! }, body });
    assert.equal(accepted.status, 202);
    const getUrl = /curl '([^']+)'/.exec(stdout)?.[1];
    assert.ok(getUrl, 'a GET command in the banner');
    const sent = JSON.parse(body!) as { id: string; source: string };
    let found: { id: string; source: string } | undefined;
    while (!found) {
      const page = (await (await fetch(getUrl)).json()) as { items: { id: string; source: string }[] };
      found = page.items.find((e) => e.id === sent.id && e.source === sent.source);
      if (!found) await new Promise((resolve) => setImmediate(resolve));
    }
    assert.deepEqual(found && { id: found.id, source: found.source }, { id: sent.id, source: sent.source });
  } finally {
    try {
      child.kill('SIGINT');
      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, 0, 'Ctrl-C drains and exits 0');
      assert.deepEqual(
        readdirSync(tmp).filter((n) => n.startsWith('ingesta-pg-')),
        [],
        'the temporary database is removed',
      );
      assert.deepEqual(readdirSync(stateDir(tmp)), [], 'the state file is removed');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
});
