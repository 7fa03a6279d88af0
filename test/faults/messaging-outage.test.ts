import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { eventually, withScenario } from './support/scenario.ts';

const outageMs = 6_000;

/** Failed receives the consumer logged during the outage, per poller, for the backoff check below. */
let receiveFailures: Map<number, number> | undefined;

test('when the SNS/SQS emulator is down under load, then POST answers 503 with Retry-After and never 202, and retrying clients get everything stored', {
  timeout: 120_000,
}, async (t) => {
  await withScenario({ persistentMessaging: true }, async (scenario) => {
    const api = await scenario.startApi();
    const consumer = await scenario.startConsumer();
    const source = `/faults/messaging-outage/${crypto.randomUUID()}`;
    const load = scenario.startLoad({ targets: () => [api.baseUrl], ratePerSec: 30, source });
    await scenario.waitForStored(source, 30);

    // A crash: whatever the emulator had accepted is on disk, as SNS and SQS keep what they took.
    await scenario.emulator.kill('SIGKILL');
    const downAt = Date.now();
    await consumer.process.waitForLog((l) => l.msg === 'SQS receive failed');
    // The outage lasts a fixed time: this is the scenario's clock, not a wait for an event.
    await delay(outageMs);
    const restartAt = Date.now();
    await scenario.emulator.restart();

    const duringOutage = load.attempts.filter((a) => a.startedAt >= downAt && a.endedAt <= restartAt);
    t.diagnostic(
      `${duringOutage.length} POSTs answered during the outage, slowest ` +
        `${Math.max(...duringOutage.map((a) => a.endedAt - a.startedAt))} ms`,
    );
    assert.ok(duringOutage.length >= 50, 'clients kept trying during the outage');
    for (const attempt of duringOutage) {
      assert.equal(attempt.status, 503, 'never a 202 without SNS');
      // A retry storm may also be shed (OVERLOADED): a 503 with Retry-After too.
      assert.ok(['DEPENDENCY_UNAVAILABLE', 'OVERLOADED'].includes(attempt.code ?? ''), attempt.code);
      assert.ok(Number(attempt.retryAfter) >= 1, 'with Retry-After');
    }
    assert.ok(duringOutage.some((a) => a.code === 'DEPENDENCY_UNAVAILABLE'));

    await eventually('a POST to be accepted again', async () =>
      load.attempts.some((a) => a.startedAt > restartAt && a.status === 202) ? true : undefined,
    );
    await load.stop();
    await scenario.waitForStored(source, load.accepted.size, 60_000);
    await scenario.reconcile(source, load.accepted);
    await eventually(
      'the queue to drain',
      async () => {
        const depth = await scenario.queueDepth('main');
        return depth.visible + depth.inFlight === 0 ? true : undefined;
      },
      { timeoutMs: 30_000 },
    );
    assert.deepEqual(
      await scenario.queueDepth('dlq'),
      { visible: 0, inFlight: 0 },
      'nothing reached the DLQ',
    );
    receiveFailures = new Map();
    for (const l of consumer.process.logs.filter((l) => l.msg === 'SQS receive failed')) {
      const poller = Number(l.poller);
      receiveFailures.set(poller, (receiveFailures.get(poller) ?? 0) + 1);
    }
    t.diagnostic(
      `the consumer's ${receiveFailures.size} pollers logged ${[...receiveFailures.values()].join(', ')} ` +
        `failed receives over the ${outageMs / 1000} s outage`,
    );
  });
});

describe('consumer receive backoff', () => {
  test('when SQS cannot be reached, then each poller backs off instead of retrying at once', () => {
    assert.ok(receiveFailures !== undefined && receiveFailures.size > 0, 'the outage scenario ran');
    // Backing off 250 ms doubling, a poller fails about 6 receives in 6 s; without backoff, hundreds.
    for (const [poller, failures] of receiveFailures) {
      assert.ok(failures <= 12, `poller ${poller}: ${failures} failed receives in ${outageMs / 1000} s`);
    }
  });
});
