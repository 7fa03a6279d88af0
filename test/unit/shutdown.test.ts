import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { createShutdown } from '../../platform/shutdown.ts';

const log = pino({ level: 'silent' });

describe('shutdown', () => {
  test('when steps succeed, then they run once, in order, and the exit code is 0', async () => {
    const ran: string[] = [];
    const shutdown = createShutdown({
      log,
      timeoutMs: 1_000,
      steps: ['readiness', 'intake', 'pool'].map((name) => ({ name, run: async () => void ran.push(name) })),
    });
    const [a, b] = await Promise.all([shutdown.run('SIGTERM'), shutdown.run('SIGINT')]);
    assert.deepEqual([a, b], [0, 0]);
    assert.deepEqual(ran, ['readiness', 'intake', 'pool']);
  });

  test('when a step fails, then the later steps still run and the exit code is 1', async () => {
    const ran: string[] = [];
    const shutdown = createShutdown({
      log,
      timeoutMs: 1_000,
      steps: [
        { name: 'a', run: () => Promise.reject(new Error('boom')) },
        { name: 'b', run: () => void ran.push('b') },
      ],
    });
    assert.equal(await shutdown.run('SIGTERM'), 1);
    assert.deepEqual(ran, ['b']);
  });

  test('when a step hangs past the deadline, then shutdown gives up with exit code 1', async () => {
    let release: () => void = () => {};
    const shutdown = createShutdown({
      log,
      timeoutMs: 50,
      steps: [{ name: 'hang', run: () => new Promise<void>((resolve) => (release = resolve)) }],
    });
    assert.equal(await shutdown.run('SIGTERM'), 1);
    release();
  });
});
