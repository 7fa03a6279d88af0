import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TcpProxy } from '../support/tcp-proxy.ts';
import { eventually, faultEnv, openPoolConnections, scrapeMetric, withScenario } from './support/scenario.ts';

const shutdownTimeoutMs = Number(faultEnv.SHUTDOWN_TIMEOUT_MS);

const proxyFor = (url: string) => {
  const u = new URL(url);
  return new TcpProxy({ host: u.hostname, port: Number(u.port || 5432) });
};

test('when the API and the consumer get SIGTERM under load, then in-flight work completes, they exit 0 in time and nothing accepted is lost', {
  timeout: 120_000,
}, async (t) => {
  await withScenario({}, async (scenario) => {
    // The first API's publishes and the consumer's queries go through proxies that can hold them.
    const snsProxy = proxyFor(scenario.emulator.endpoint);
    const dbProxy = proxyFor(scenario.databaseUrl);
    await Promise.all([snsProxy.start(), dbProxy.start()]);
    try {
      const leaving = await scenario.startApi({
        AWS_ENDPOINT_URL: snsProxy.wrap(scenario.emulator.endpoint).replace(/\/$/, ''),
      });
      const staying = await scenario.startApi();
      // A load balancer's view: the leaving API stays a target until it has exited.
      const targets = new Set([leaving.baseUrl, staying.baseUrl]);
      const source = `/faults/sigterm/${crypto.randomUUID()}`;
      const load = scenario.startLoad({ targets: () => [...targets], ratePerSec: 40, source });
      const consumerEnv = {
        DATABASE_URL: dbProxy.wrap(scenario.databaseUrl),
        DATABASE_POOL_MAX: '2',
        CONSUMER_POLLERS: '2',
        LOG_LEVEL: 'debug',
      };
      let consumer = await scenario.startConsumer(consumerEnv);
      await scenario.waitForStored(source, 40);

      // The API: SIGTERM while requests wait on SNS.
      // A request sent after the pause cannot be answered before the resume: its publish is held.
      snsProxy.pause();
      const pausedAt = Date.now();
      const held = await eventually(
        'requests in flight on the leaving API',
        async () => {
          const open = load.open(leaving.baseUrl, pausedAt);
          return open.length >= 3 ? open : undefined;
        },
        { intervalMs: 10 },
      );
      // A round trip to the same process after they were sent, so the server has read them before
      // the signal: a request still in a socket buffer at SIGTERM may meet a closing keep-alive
      // connection, which is a connection error its client retries elsewhere (checked below).
      await fetch(`http://127.0.0.1:${leaving.adminPort}/livez`);
      const apiSigtermAt = Date.now();
      const apiExit = leaving.process.stop('SIGTERM');
      await leaving.process.waitForLog((l) => l.msg === 'shutting down');
      const ready = await fetch(`http://127.0.0.1:${leaving.adminPort}/readyz`);
      assert.equal(ready.status, 503, 'readiness turns off first');
      snsProxy.resume();
      assert.equal(await apiExit, 0, 'the API exits 0');
      const apiExitedAt = Date.now();
      targets.delete(leaving.baseUrl);
      assert.ok(apiExitedAt - apiSigtermAt < shutdownTimeoutMs, 'within SHUTDOWN_TIMEOUT_MS');
      await eventually('answers to the requests held at SIGTERM', async () =>
        held.every((a) => a.endedAt > 0) ? true : undefined,
      );
      assert.ok(
        held.every((a) => a.endedAt >= apiSigtermAt),
        'they were still waiting on SNS at SIGTERM',
      );
      assert.deepEqual(
        held.map((a) => a.status),
        held.map(() => 202),
        'requests in flight at SIGTERM are answered 202',
      );
      const refused = load.attempts.filter(
        (a) => a.target === leaving.baseUrl && a.startedAt >= pausedAt && !held.includes(a),
      );
      assert.ok(
        refused.every((a) => a.status === 0 || a.status === 202),
        'any other request to the leaving API (sent around or after SIGTERM) is served or refused, never failed',
      );
      t.diagnostic(
        `API: ${held.length} requests in flight at SIGTERM, exit after ${apiExitedAt - apiSigtermAt} ms, ` +
          `${refused.filter((a) => a.status === 0).length} later connection errors retried elsewhere`,
      );

      // The consumer: SIGTERM while a batch waits on PostgreSQL.
      await openPoolConnections(consumer.adminPort, 2);
      dbProxy.pause();
      await eventually('a batch in flight, waiting on the database', async () => {
        const used = await scrapeMetric(consumer.adminPort, 'ingesta_db_pool_connections', { state: 'used' });
        const { inFlight } = await scenario.queueDepth('main');
        return used >= 1 && inFlight >= 1 ? true : undefined;
      });
      const consumerSigtermAt = Date.now();
      const consumerExit = consumer.process.stop('SIGTERM');
      await consumer.process.waitForLog((l) => l.msg === 'shutting down');
      dbProxy.resume();
      assert.equal(await consumerExit, 0, 'the consumer exits 0');
      const consumerExitedAt = Date.now();
      assert.ok(consumerExitedAt - consumerSigtermAt < shutdownTimeoutMs, 'within SHUTDOWN_TIMEOUT_MS');
      const logs = consumer.process.logs;
      const shutdownAt = logs.findIndex((l) => l.msg === 'shutting down');
      assert.ok(
        logs.slice(shutdownAt).some((l) => l.msg === 'batch stored' && Number(l.inserted) > 0),
        'the batch in flight at SIGTERM was stored and acknowledged before exit',
      );
      assert.ok(logs.some((l) => l.msg === 'shutdown complete'));
      t.diagnostic(`consumer: exit after ${consumerExitedAt - consumerSigtermAt} ms`);

      consumer = await scenario.startConsumer(consumerEnv);
      await scenario.waitForStored(source, load.accepted.size + 40);
      await load.stop();
      await scenario.waitForStored(source, load.accepted.size, 60_000);
      await scenario.reconcile(source, load.accepted);
      assert.deepEqual(await scenario.queueDepth('dlq'), { visible: 0, inFlight: 0 });
    } finally {
      await snsProxy.stop();
      await dbProxy.stop();
    }
  });
});
