import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { eventually, withScenario } from './support/scenario.ts';

const outageMs = 20_000;

const status = async (url: string) => (await fetch(url)).status;

interface Readiness {
  ok: boolean;
  degraded: boolean;
  checks: { name: string; ok: boolean; required: boolean }[];
}
const readiness = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Readiness };
};

test('when PostgreSQL is down for 20 s under load, then reads fail fast, intake goes on, and afterwards everything is stored with nothing in the DLQ', {
  timeout: 120_000,
}, async (t) => {
  await withScenario({ restartablePostgres: true }, async (scenario) => {
    const postgres = scenario.restartablePostgres!;
    const api = await scenario.startApi();
    // Liveness fails after 10 s without a completed poll, unless polling is paused on purpose:
    // the 20 s outage must not get the consumer restarted.
    const consumer = await scenario.startConsumer({ CONSUMER_STALL_AFTER_SEC: '10' });
    const source = `/faults/database-outage/${crypto.randomUUID()}`;
    const load = scenario.startLoad({ targets: () => [api.baseUrl], ratePerSec: 30, source });
    await scenario.waitForStored(source, 30);
    assert.equal(await status(`http://127.0.0.1:${api.adminPort}/readyz`), 200);

    await postgres.stop();
    const downAt = Date.now();
    await consumer.process.waitForLog(
      (l) => l.msg === 'database unavailable: pausing polling until it answers',
    );

    // During the outage: reads answer 503 quickly, intake carries on, so the API stays in the load
    // balancer (ready, reporting the database as degraded); the consumer reports not ready.
    const reads: { status: number; ms: number; retryAfter: string | null; code?: string }[] = [];
    while (Date.now() - downAt < outageMs) {
      const started = performance.now();
      const res = await fetch(`${api.baseUrl}/v1/events?source=${encodeURIComponent(source)}&limit=5`);
      const body = (await res.json()) as { code?: string };
      reads.push({
        status: res.status,
        ms: performance.now() - started,
        retryAfter: res.headers.get('retry-after'),
        ...(body.code ? { code: body.code } : {}),
      });
      const apiReady = await readiness(`http://127.0.0.1:${api.adminPort}/readyz`);
      assert.equal(apiReady.status, 200, 'the API stays ready: POSTs need SNS only');
      assert.equal(apiReady.body.degraded, true);
      assert.deepEqual(
        apiReady.body.checks.map((c) => [c.name, c.ok, c.required]),
        [['database', false, false]],
        'the database is reported down',
      );
      assert.equal(await status(`http://127.0.0.1:${consumer.adminPort}/readyz`), 503, 'nor the consumer');
      assert.equal(
        await status(`http://127.0.0.1:${consumer.adminPort}/livez`),
        200,
        'the consumer lives on',
      );
      // The outage lasts a fixed time: this is the scenario's clock, not a wait for an event.
      await delay(1_000);
    }
    const acceptedDuringOutage = load.attempts.filter((a) => a.startedAt > downAt && a.status === 202).length;
    await postgres.start();
    const upAt = Date.now();

    assert.ok(reads.length >= 5, 'reads were tried throughout the outage');
    for (const read of reads) {
      assert.equal(read.status, 503);
      assert.equal(read.code, 'DEPENDENCY_UNAVAILABLE');
      assert.ok(read.retryAfter, 'with Retry-After');
      assert.ok(read.ms < 2_500, `a read answered in ${Math.round(read.ms)} ms, well under 5 s`);
    }
    t.diagnostic(
      `${reads.length} reads during the outage, slowest ${Math.round(Math.max(...reads.map((r) => r.ms)))} ms; ` +
        `${acceptedDuringOutage} events accepted meanwhile`,
    );
    assert.ok(
      acceptedDuringOutage > 100,
      `intake went on without the database (${acceptedDuringOutage} accepted)`,
    );

    await consumer.process.waitForLog((l) => l.msg === 'database is back: resuming polling');
    await eventually('the API to report the database up again', async () =>
      (await readiness(`http://127.0.0.1:${api.adminPort}/readyz`)).body.degraded ? undefined : true,
    );
    await load.stop();
    await scenario.waitForStored(source, load.accepted.size, 60_000);
    await scenario.reconcile(source, load.accepted);
    assert.ok(Date.now() - upAt < 60_000);
    assert.deepEqual(
      await scenario.queueDepth('dlq'),
      { visible: 0, inFlight: 0 },
      'nothing transient reached the DLQ',
    );
    assert.deepEqual(await scenario.queueDepth('main'), { visible: 0, inFlight: 0 });
  });
});
