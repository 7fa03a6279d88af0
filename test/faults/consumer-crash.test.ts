import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TcpProxy } from '../support/tcp-proxy.ts';
import {
  type ConsumerProcess,
  eventually,
  openPoolConnections,
  type Scenario,
  scrapeMetric,
  withScenario,
} from './support/scenario.ts';

const storedCount = (adminPort: number, outcome: string) =>
  scrapeMetric(adminPort, 'ingesta_events_stored_total', { outcome });

/** Resolves once the consumer holds a received batch whose INSERT is waiting on the (held) database. */
async function batchWaitingOnDatabase(scenario: Scenario, consumer: ConsumerProcess): Promise<void> {
  await eventually('a batch in flight, waiting on the database', async () => {
    const used = await scrapeMetric(consumer.adminPort, 'ingesta_db_pool_connections', { state: 'used' });
    const { inFlight } = await scenario.queueDepth('main');
    return used >= 1 && inFlight >= 1 ? true : undefined;
  });
}

test('when the consumer is SIGKILLed mid-batch, before and after COMMIT, then after restarts every accepted event is stored once', {
  timeout: 120_000,
}, async () => {
  await withScenario({}, async (scenario) => {
    // The consumer reaches PostgreSQL and SQS through proxies that can hold its traffic in flight.
    const dbUrl = new URL(scenario.databaseUrl);
    const dbProxy = new TcpProxy({ host: dbUrl.hostname, port: Number(dbUrl.port || 5432) });
    const sqsUrl = new URL(scenario.emulator.endpoint);
    const sqsProxy = new TcpProxy({ host: sqsUrl.hostname, port: Number(sqsUrl.port) });
    await Promise.all([dbProxy.start(), sqsProxy.start()]);
    const consumerEnv = {
      DATABASE_POOL_MAX: '2',
      CONSUMER_POLLERS: '2',
      DATABASE_URL: dbProxy.wrap(scenario.databaseUrl),
      AWS_ENDPOINT_URL: sqsProxy.wrap(scenario.emulator.endpoint).replace(/\/$/, ''),
    };
    try {
      const api = await scenario.startApi();
      const source = `/faults/consumer-crash/${crypto.randomUUID()}`;
      const load = scenario.startLoad({ targets: () => [api.baseUrl], ratePerSec: 30, source });
      let consumer = await scenario.startConsumer(consumerEnv);
      await scenario.waitForStored(source, 30);

      // 1. Killed with its INSERT sent but not committed: the batch comes back after the visibility timeout.
      await openPoolConnections(consumer.adminPort, 2);
      dbProxy.pause();
      await batchWaitingOnDatabase(scenario, consumer);
      assert.equal(await consumer.process.stop('SIGKILL'), null);
      dbProxy.resume();
      consumer = await scenario.startConsumer(consumerEnv);
      const restartedAt = load.accepted.size;
      await scenario.waitForStored(source, restartedAt + 30);

      // 2. Killed after COMMIT, before the DeleteMessageBatch reached SQS: the batch is redelivered
      // and must be recognised as already stored (no second row, no second rollup count).
      await openPoolConnections(consumer.adminPort, 2);
      dbProxy.pause();
      await batchWaitingOnDatabase(scenario, consumer);
      sqsProxy.pause();
      const insertedBefore = await storedCount(consumer.adminPort, 'inserted');
      dbProxy.resume();
      await eventually('the held batch to commit', async () =>
        (await storedCount(consumer.adminPort, 'inserted')) > insertedBefore ? true : undefined,
      );
      const { inFlight } = await scenario.queueDepth('main');
      assert.ok(inFlight >= 1, 'the committed batch is still unacknowledged');
      await consumer.process.stop('SIGKILL');
      sqsProxy.resume();
      consumer = await scenario.startConsumer(consumerEnv);

      await scenario.waitForStored(source, load.accepted.size + 30);
      await load.stop();
      // Redeliveries wait out the 10 s visibility timeout of the killed consumers' receives.
      await scenario.waitForStored(source, load.accepted.size, 60_000);
      await eventually('the queue to drain', async () => {
        const depth = await scenario.queueDepth('main');
        return depth.visible + depth.inFlight === 0 ? true : undefined;
      });
      await scenario.reconcile(source, load.accepted);
      assert.ok(
        (await storedCount(consumer.adminPort, 'duplicate')) >= 1,
        'the batch committed before the kill was redelivered and found already stored',
      );
      assert.deepEqual(
        await scenario.queueDepth('dlq'),
        { visible: 0, inFlight: 0 },
        'a crash is not poison',
      );
    } finally {
      await dbProxy.stop();
      await sqsProxy.stop();
    }
  });
});
