import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { TcpProxy } from '../support/tcp-proxy.ts';
import {
  faultEnv,
  openPoolConnections,
  type Scenario,
  scrapeMetric,
  withScenario,
} from './support/scenario.ts';

const poolMax = 2;
const lockMs = 8_000;
/** Below the 10 s visibility timeout: slow, not gone. */
const stallMs = 4_000;

interface Sample {
  poolUsed: number;
  poolWaiting: number;
  sessions: number;
}

/** Samples the consumer's pool gauge and its sessions in pg_stat_activity every 200 ms for `ms`. */
async function sampleFor(scenario: Scenario, adminPort: number, ms: number): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (const until = Date.now() + ms; Date.now() < until; ) {
    const [poolUsed, poolWaiting, { rows }] = await Promise.all([
      scrapeMetric(adminPort, 'ingesta_db_pool_connections', { state: 'used' }),
      scrapeMetric(adminPort, 'ingesta_db_pool_connections', { state: 'waiting' }),
      scenario.db.query<{ n: string }>(
        `select count(*) as n from pg_stat_activity
         where application_name = 'ingesta-consumer' and datname = current_database()`,
      ),
    ]);
    samples.push({ poolUsed, poolWaiting, sessions: Number(rows[0]?.n) });
    // The slow phase lasts a fixed time; sampling it is the point, not waiting for an event.
    await delay(200);
  }
  return samples;
}

test('when the database is slow (locked, then stalled), then no message is processed twice in parallel and the consumer stays within its pool', {
  timeout: 120_000,
}, async (t) => {
  await withScenario({}, async (scenario) => {
    const u = new URL(scenario.databaseUrl);
    const proxy = new TcpProxy({ host: u.hostname, port: Number(u.port || 5432) });
    await proxy.start();
    const lock = await scenario.db.connect();
    try {
      const api = await scenario.startApi();
      const consumer = await scenario.startConsumer({
        DATABASE_URL: proxy.wrap(scenario.databaseUrl),
        DATABASE_POOL_MAX: String(poolMax),
        CONSUMER_POLLERS: String(poolMax),
      });
      const source = `/faults/slow-database/${crypto.randomUUID()}`;
      const load = scenario.startLoad({ targets: () => [api.baseUrl], ratePerSec: 30, source });
      await scenario.waitForStored(source, 30);

      // 1. Locked: every INSERT waits on the lock until the statement timeout cancels it.
      await lock.query('begin');
      await lock.query('lock table events in exclusive mode');
      const read = await fetch(`${api.baseUrl}/v1/events?source=${encodeURIComponent(source)}&limit=1`);
      assert.equal(read.status, 200, 'reads go on while writes wait on the lock');
      const locked = await sampleFor(scenario, consumer.adminPort, lockMs);
      const unlockedAt = Date.now();
      await lock.query('commit');

      // 2. Stalled: the consumer's connections hang (a slow network, a stuck server) for a while.
      await openPoolConnections(consumer.adminPort, poolMax);
      proxy.pause();
      const stalled = await sampleFor(scenario, consumer.adminPort, stallMs);
      proxy.resume();

      await load.stop();
      await scenario.waitForStored(source, load.accepted.size, 60_000);
      await scenario.reconcile(source, load.accepted);

      const samples = [...locked, ...stalled];
      t.diagnostic(
        `max pool used ${Math.max(...samples.map((s) => s.poolUsed))}, max waiting ` +
          `${Math.max(...samples.map((s) => s.poolWaiting))}, max sessions ${Math.max(...samples.map((s) => s.sessions))}`,
      );
      assert.ok(
        locked.some((s) => s.poolUsed > 0),
        'the consumer was blocked on the database during the lock',
      );
      assert.ok(
        consumer.process.logs.some((l) => l.msg === 'database unavailable: pausing polling until it answers'),
        'a cancelled INSERT (statement timeout) was retried, not rejected',
      );
      // Polling stays paused while the lock is held: receives would only spend receive counts, and
      // a lock held long enough would walk valid events into the DLQ.
      const resumedAt = consumer.process.logs
        .filter((l) => l.msg === 'database is back: resuming polling')
        .map((l) => Date.parse(String(l.time)));
      assert.ok(resumedAt.length > 0, 'polling resumed');
      assert.ok(
        resumedAt.every((at) => at >= unlockedAt),
        `polling resumed only after the lock was released (${resumedAt.map((at) => at - unlockedAt).join(', ')} ms)`,
      );
      for (const s of samples) {
        assert.ok(s.poolUsed <= poolMax, `pool used ${s.poolUsed} ≤ DATABASE_POOL_MAX`);
        assert.ok(s.sessions <= poolMax, `${s.sessions} sessions ≤ DATABASE_POOL_MAX`);
      }
      assert.equal(
        await scrapeMetric(consumer.adminPort, 'ingesta_events_stored_total', { outcome: 'duplicate' }),
        0,
        'no message was handled twice: no batch outlived its visibility timeout',
      );
      assert.deepEqual(
        await scenario.queueDepth('dlq'),
        { visible: 0, inFlight: 0 },
        'slowness is not poison',
      );
      assert.ok(
        Number(faultEnv.DATABASE_STATEMENT_TIMEOUT_MS) * 3 <
          Number(faultEnv.CONSUMER_VISIBILITY_TIMEOUT_SEC) * 1000,
      );
    } finally {
      await lock.query('rollback').catch(() => undefined);
      lock.release();
      await proxy.stop();
    }
  });
});
