import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TcpProxy } from '../support/tcp-proxy.ts';
import { eventually, openPoolConnections, withScenario } from './support/scenario.ts';

const stallAfterSec = 10;

test('when the consumer stops completing polls (its queries hang, no error), then /livez fails after CONSUMER_STALL_AFTER_SEC and recovers with it', {
  timeout: 120_000,
}, async (t) => {
  await withScenario({}, async (scenario) => {
    const u = new URL(scenario.databaseUrl);
    const proxy = new TcpProxy({ host: u.hostname, port: Number(u.port || 5432) });
    await proxy.start();
    try {
      const api = await scenario.startApi();
      const consumer = await scenario.startConsumer({
        DATABASE_URL: proxy.wrap(scenario.databaseUrl),
        CONSUMER_STALL_AFTER_SEC: String(stallAfterSec),
        DATABASE_POOL_MAX: '2',
        CONSUMER_POLLERS: '2',
      });
      const livez = async () => {
        const res = await fetch(`http://127.0.0.1:${consumer.adminPort}/livez`);
        return { status: res.status, body: (await res.json()) as { checks: { error?: string }[] } };
      };
      const source = `/faults/consumer-stall/${crypto.randomUUID()}`;
      const load = scenario.startLoad({ targets: () => [api.baseUrl], ratePerSec: 20, source });
      await scenario.waitForStored(source, 20);
      assert.equal((await livez()).status, 200);

      // Each poller's next query goes out on an open connection and waits for an answer that never
      // comes: no error, no progress. (Were a new connection needed, its connect timeout would
      // report an outage, and an outage pauses polling on purpose.)
      await openPoolConnections(consumer.adminPort, 2);
      proxy.pause();
      const stalledAt = Date.now();
      const failed = await eventually(
        '/livez to fail',
        async () => {
          const result = await livez();
          return result.status === 503 ? result : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
      const detectedAfterMs = Date.now() - stalledAt;
      t.diagnostic(`/livez failed ${detectedAfterMs} ms after the consumer stalled`);
      assert.match(
        failed.body.checks[0]?.error ?? '',
        new RegExp(`no completed poll for over ${stallAfterSec} s`),
      );
      assert.ok(detectedAfterMs >= (stallAfterSec - 1) * 1000, 'not before the stall threshold');

      proxy.resume();
      await eventually('/livez to pass again', async () =>
        (await livez()).status === 200 ? true : undefined,
      );
      await load.stop();
      await scenario.waitForStored(source, load.accepted.size, 60_000);
      await scenario.reconcile(source, load.accepted);
      assert.deepEqual(await scenario.queueDepth('dlq'), { visible: 0, inFlight: 0 });
    } finally {
      await proxy.stop();
    }
  });
});
