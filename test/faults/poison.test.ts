import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Message } from '@aws-sdk/client-sqs';
import { rejectionAttributes } from '../../consumer/batch-handler.ts';
import { maxEventBytes } from '../../ingest/contract.ts';
import { orderEventFor } from './support/load.ts';
import {
  type ConsumerProcess,
  eventually,
  type Scenario,
  scrapeMetric,
  startScenario,
} from './support/scenario.ts';

/** A message no consumer can ever store, and the rejection code it must reach the DLQ with. */
interface PoisonCase {
  name: string;
  body: string;
  code: 'NOT_JSON' | 'SCHEMA_VIOLATION' | 'EVENT_TOO_LARGE' | 'STORE_REJECTED';
}

/** A valid CloudEvent 10 KB over the size limit: five of them make more than SQS's 1 MiB per batch call. */
const oversize = (source: string, name: string): PoisonCase => ({
  name,
  body: JSON.stringify({ ...orderEventFor(source, name), data: 'x'.repeat(maxEventBytes + 10_000) }),
  code: 'EVENT_TOO_LARGE',
});

const poisonCases = (source: string): PoisonCase[] => [
  { name: 'not-json', body: '{"specversion": "1.0", "id": ', code: 'NOT_JSON' },
  { name: 'empty-body', body: ' ', code: 'NOT_JSON' },
  { name: 'not-an-object', body: '"just a string"', code: 'SCHEMA_VIOLATION' },
  {
    name: 'no-type',
    body: JSON.stringify({ specversion: '1.0', id: 'no-type', source }),
    code: 'SCHEMA_VIOLATION',
  },
  {
    name: 'wrong-specversion',
    body: JSON.stringify({ ...orderEventFor(source, 'v03'), specversion: '0.3' }),
    code: 'SCHEMA_VIOLATION',
  },
  oversize(source, 'oversize'),
  {
    name: 'oversize-envelope',
    body: JSON.stringify({ Type: 'Notification', Message: 'x'.repeat(maxEventBytes * 2) }),
    code: 'EVENT_TOO_LARGE',
  },
  {
    name: 'impossible-day',
    body: JSON.stringify({ ...orderEventFor(source, 'feb-30'), time: '2025-02-30T10:00:00Z' }),
    code: 'SCHEMA_VIOLATION',
  },
  {
    name: 'unencoded-source',
    body: JSON.stringify({ ...orderEventFor(source, 'cafe'), source: `${source}/café` }),
    code: 'SCHEMA_VIOLATION',
  },
];

const attribute = (m: Message, name: string) => m.MessageAttributes?.[name]?.StringValue;

describe('poison messages put straight on the queue under load', () => {
  let scenario: Scenario;
  let consumer: ConsumerProcess;
  const source = `/faults/poison/${crypto.randomUUID()}`;
  const goodRaw: string[] = [];
  const poison = poisonCases(source);
  let accepted: Set<string>;
  let dlq: Message[];

  const sendGood = async () => {
    const id = `raw-${crypto.randomUUID()}`;
    goodRaw.push(id);
    await scenario.sendRaw(JSON.stringify(orderEventFor(source, id)));
  };

  before(
    async () => {
      scenario = await startScenario();
      try {
        const api = await scenario.startApi();
        consumer = await scenario.startConsumer();
        const load = scenario.startLoad({ targets: () => [api.baseUrl], ratePerSec: 20, source });
        // Each poison message between two good ones, among the load's events; the next is sent once
        // the consumer has rejected the previous one.
        for (const c of poison) {
          await sendGood();
          const messageId = await scenario.sendRaw(c.body, { 'fault-case': c.name });
          await sendGood();
          await consumer.process.waitForLog(
            (l) => l.msg === 'message moved to DLQ' && l.messageId === messageId,
          );
        }
        await load.stop();
        accepted = load.accepted;
        await scenario.waitForStored(source, accepted.size + goodRaw.length);
        dlq = await scenario.peekAll('dlq');
      } catch (err) {
        scenario.dumpLogs();
        throw err;
      }
    },
    { timeout: 120_000 },
  );
  after(() => scenario?.close());

  test('when poison sits among good messages, then every good message is stored exactly once', async () => {
    await scenario.reconcile(source, [...accepted, ...goodRaw]);
    assert.deepEqual(await scenario.queueDepth('main'), { visible: 0, inFlight: 0 }, 'nothing left to retry');
  });

  test('when poison is consumed, then each message lands in the DLQ once, with its code, reason and time', () => {
    assert.equal(dlq.length, poison.length, 'one DLQ message per poison message');
    const byCase = new Map(dlq.map((m) => [attribute(m, 'fault-case'), m]));
    for (const c of poison) {
      const m = byCase.get(c.name);
      assert.ok(m, `${c.name} is in the DLQ`);
      assert.equal(attribute(m, rejectionAttributes.code), c.code, `${c.name}: rejection code`);
      assert.ok((attribute(m, rejectionAttributes.reason) ?? '').length > 10, `${c.name}: a reason`);
      assert.ok(!Number.isNaN(Date.parse(attribute(m, rejectionAttributes.rejectedAt) ?? '')), 'rejected-at');
      assert.equal(m.Body, c.body, `${c.name}: the original body is kept`);
    }
  });

  test('when poison is rejected, then the consumer counts it as rejected and the rest as inserted', async () => {
    const stored = (outcome: string) =>
      scrapeMetric(consumer.adminPort, 'ingesta_events_stored_total', { outcome });
    assert.equal(await stored('rejected'), poison.length);
    assert.equal(await stored('inserted'), accepted.size + goodRaw.length);
    assert.equal(await stored('duplicate'), 0);
  });

  test('when oversize poison waits in a backlog, then it reaches the DLQ with its reason on first delivery', async () => {
    await consumer.process.stop();
    const backlog: PoisonCase[] = [];
    for (let i = 0; i < 5; i++) {
      const c = oversize(source, `backlog-oversize-${i}`);
      backlog.push(c);
      await scenario.sendRaw(c.body, { 'fault-case': c.name });
    }
    const next = await scenario.startConsumer();
    const done = new AbortController();
    const outcome = await Promise.race([
      next.process
        .waitForLog((l) => l.msg === 'could not move rejected messages to the DLQ')
        .then((l) => `the DLQ move failed: ${JSON.stringify(l.err)}`),
      eventually(
        'the backlog in the DLQ',
        async () => {
          // The messages read by the earlier peek are still invisible: count both.
          const depth = await scenario.queueDepth('dlq');
          return depth.visible + depth.inFlight >= poison.length + backlog.length ? 'moved' : undefined;
        },
        { signal: done.signal },
      ),
    ]).finally(() => done.abort());
    assert.equal(outcome, 'moved');
    const moved = new Map((await scenario.peekAll('dlq')).map((m) => [attribute(m, 'fault-case'), m]));
    for (const c of backlog) {
      const m = moved.get(c.name);
      assert.ok(m, `${c.name} is in the DLQ`);
      // Only the consumer adds a code; SQS's redrive would move the message without one.
      assert.equal(attribute(m, rejectionAttributes.code), 'EVENT_TOO_LARGE', `${c.name}: rejection code`);
      assert.equal(m.Body, c.body, `${c.name}: the original body is kept`);
    }
  });
});
