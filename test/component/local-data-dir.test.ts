import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { freshTmpDir, startLocalMode } from '../support/local-mode.ts';
import { orderEvent } from '../support/stack.ts';

/** Reads events of the source until the one sent is stored (the consumer stores asynchronously). */
async function readBack(apiUrl: string, source: string, id: string): Promise<{ id: string; source: string }> {
  const url = `${apiUrl}/v1/events?source=${encodeURIComponent(source)}`;
  for (;;) {
    const page = (await (await fetch(url)).json()) as { items: { id: string; source: string }[] };
    const found = page.items.find((e) => e.id === id);
    if (found) return found;
  }
}

test('when local mode keeps a data directory, then an event stored before a restart is read back after it', {
  timeout: 180_000,
}, async () => {
  const tmp = freshTmpDir();
  const dataDir = join(tmp, 'data');
  const event = orderEvent({ source: `/test/data-dir/${crypto.randomUUID()}` });
  try {
    // First run: the directory is made and initialised; chosen through the environment.
    const first = await startLocalMode(tmp, { env: { INGESTA_DATA_DIR: dataDir } });
    try {
      assert.match(first.stdout(), new RegExp(`data kept in ${dataDir}`));
      const accepted = await fetch(`${first.state.apiUrl}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/cloudevents+json' },
        body: JSON.stringify(event),
      });
      assert.equal(accepted.status, 202);
      await readBack(first.state.apiUrl, event.source, event.id);
    } finally {
      assert.equal(await first.stop(), 0);
    }
    assert.ok(existsSync(join(dataDir, 'postgres', 'PG_VERSION')), 'the cluster is kept');
    assert.deepEqual(
      readdirSync(tmp).filter((n) => n.startsWith('ingesta-pg-')),
      [],
      'no temporary database was made',
    );

    // Second run: the same directory, chosen on the command line as `npm start -- --data-dir DIR`.
    const second = await startLocalMode(tmp, { args: ['--data-dir', dataDir] });
    try {
      const found = await readBack(second.state.apiUrl, event.source, event.id);
      assert.deepEqual({ id: found.id, source: found.source }, { id: event.id, source: event.source });
    } finally {
      assert.equal(await second.stop(), 0);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
