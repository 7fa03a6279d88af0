import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import type { PublishBatchCommand, SNSClient } from '@aws-sdk/client-sns';
import { pino } from 'pino';
import { createSnsPublisher, PublishError } from '../../api/sns-publisher.ts';
import { acceptEvent } from '../../ingest/contract.ts';
import { toOutgoingMessage } from '../../ingest/message.ts';

const message = (id: string) =>
  toOutgoingMessage(acceptEvent({ specversion: '1.0', id, source: '/s', type: 't' }), 0);
const eventIds = (bodies: string[]) => bodies.map((b) => (JSON.parse(b) as { id: string }).id);

interface Failure {
  Id: string;
  Code: string;
  SenderFault: boolean;
}

interface Call {
  /** Event ids in the call, in entry order. */
  events: string[];
  entryIds: string[];
  answer(failed?: (entryIds: string[], events: string[]) => Failure[]): void;
  fail(err: Error): void;
}

/** SNS whose PublishBatch calls stay in flight until the test answers them. */
function heldSns() {
  const calls: Call[] = [];
  const sns = {
    send(command: PublishBatchCommand) {
      const entries = command.input.PublishBatchRequestEntries ?? [];
      return new Promise((resolve, reject) => {
        const entryIds = entries.map((e) => e.Id as string);
        const events = eventIds(entries.map((e) => e.Message as string));
        calls.push({
          events,
          entryIds,
          answer: (failed = () => []) => {
            const f = failed(entryIds, events);
            resolve({
              Successful: entryIds.filter((id) => !f.some((x) => x.Id === id)).map((Id) => ({ Id })),
              Failed: f,
            });
          },
          fail: reject,
        });
      });
    },
  } as unknown as SNSClient;
  return { sns, calls };
}

/** Lets pending immediates and promise callbacks run (not a sleep: no time passes on the mocked clock). */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

const lingerMs = 50;

describe('SNS publisher batching across requests', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  const publisherFor = (sns: SNSClient) =>
    createSnsPublisher({
      sns,
      topicArn: 'arn:aws:sns:us-east-1:1:t',
      log: pino({ level: 'silent' }),
      lingerMs,
      backoffMs: 1,
    });

  test('when SNS is idle, then a lone message is sent in the same turn without waiting for the window', async () => {
    const { sns, calls } = heldSns();
    const published = publisherFor(sns).publish([message('a')]);
    await nextTurn();
    assert.deepEqual(
      calls.map((c) => c.events),
      [['a']],
      'sent before any time passed',
    );
    calls[0]?.answer();
    await published;
  });

  test('when a call is in flight, then a lone message waits for company no longer than the window', async () => {
    const { sns, calls } = heldSns();
    const publisher = publisherFor(sns);
    const first = publisher.publish([message('a')]);
    await nextTurn();
    const second = publisher.publish([message('b')]);
    await nextTurn();
    mock.timers.tick(lingerMs - 1);
    await nextTurn();
    assert.equal(calls.length, 1, 'still gathering inside the window');
    mock.timers.tick(1);
    await nextTurn();
    assert.deepEqual(
      calls.map((c) => c.events),
      [['a'], ['b']],
      'sent when the window closed',
    );
    for (const c of calls) c.answer();
    await Promise.all([first, second]);
  });

  test('when concurrent requests fill a call while another is in flight, then it goes at once in one PublishBatch', async () => {
    const { sns, calls } = heldSns();
    const publisher = publisherFor(sns);
    const first = publisher.publish([message('x')]);
    await nextTurn();
    const ids = Array.from({ length: 12 }, (_, i) => `r${i}`);
    const requests = ids.map((id) => publisher.publish([message(id)]));
    assert.deepEqual(
      calls.map((c) => c.events),
      [['x'], ids.slice(0, 10)],
      'ten messages from ten requests in one call, no time passed',
    );
    mock.timers.tick(lingerMs);
    await nextTurn();
    assert.deepEqual(calls[2]?.events, ids.slice(10), 'the remainder after the window');
    for (const c of calls) c.answer();
    await Promise.all([first, ...requests]);
  });

  test('when queued messages of several requests exceed 256 KiB, then no call carries more', async () => {
    const { sns, calls } = heldSns();
    const publisher = publisherFor(sns);
    const first = publisher.publish([message('x')]);
    await nextTurn();
    const big = (id: string) =>
      toOutgoingMessage(
        acceptEvent({ specversion: '1.0', id, source: '/s', type: 't', data: 'x'.repeat(100 * 1024) }),
        0,
      );
    const requests = ['b1', 'b2', 'b3'].map((id) => publisher.publish([big(id)]));
    mock.timers.tick(lingerMs);
    await nextTurn();
    assert.deepEqual(
      calls.map((c) => c.events),
      [['x'], ['b1', 'b2'], ['b3']],
      'two 100 KiB messages fit in a call, a third does not',
    );
    for (const c of calls) c.answer();
    await Promise.all([first, ...requests]);
  });

  test('when SNS rejects one entry of a shared call, then only the request it belongs to fails', async () => {
    const { sns, calls } = heldSns();
    const publisher = publisherFor(sns);
    const ok = publisher.publish([message('ok-1'), message('ok-2')]);
    const bad = publisher.publish([message('bad')]);
    await nextTurn();
    assert.deepEqual(calls[0]?.events, ['ok-1', 'ok-2', 'bad'], 'both requests share one call');
    calls[0]?.answer((entryIds, events) => [
      { Id: entryIds[events.indexOf('bad')] as string, Code: 'InvalidParameter', SenderFault: true },
    ]);
    await ok;
    await assert.rejects(bad, PublishError);
    assert.equal(calls.length, 1, 'a sender fault is not retried');
  });

  test('when an entry fails transiently, then only it is retried and its request still succeeds', async () => {
    const { sns, calls } = heldSns();
    const publisher = publisherFor(sns);
    const a = publisher.publish([message('a')]);
    const b = publisher.publish([message('b')]);
    await nextTurn();
    calls[0]?.answer((entryIds, events) => [
      { Id: entryIds[events.indexOf('b')] as string, Code: 'InternalError', SenderFault: false },
    ]);
    await a;
    await nextTurn();
    mock.timers.tick(1);
    await nextTurn();
    assert.deepEqual(calls[1]?.events, ['b'], 'the failed entry alone is sent again');
    calls[1]?.answer();
    await b;
  });

  test('when the PublishBatch call itself fails, then every request in it fails with PublishError', async () => {
    const { sns, calls } = heldSns();
    const publisher = publisherFor(sns);
    const a = publisher.publish([message('a')]);
    const b = publisher.publish([message('b')]);
    await nextTurn();
    calls[0]?.fail(new Error('connection reset'));
    await assert.rejects(a, PublishError);
    await assert.rejects(b, PublishError);
  });
});
