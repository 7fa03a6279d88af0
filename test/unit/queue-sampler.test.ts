import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { startQueueSampler } from '../../consumer/queue-sampler.ts';
import { createMetrics } from '../../platform/metrics.ts';

/** Queue depths as SQS would report them; the clock is the test's. */
function setup() {
  const depths: Record<string, [number, number]> = { main: [0, 0], dlq: [0, 0] };
  const sqs = {
    async send(command: { input: { QueueUrl: string } }) {
      const [visible, inFlight] = depths[command.input.QueueUrl] ?? [0, 0];
      return {
        Attributes: {
          ApproximateNumberOfMessages: String(visible),
          ApproximateNumberOfMessagesNotVisible: String(inFlight),
        },
      };
    },
  } as unknown as SQSClient;
  let clock = 1_000_000;
  const metrics = createMetrics(new Registry(), 'consumer');
  const sampler = startQueueSampler({
    sqs,
    queues: { main: 'main', dlq: 'dlq' },
    metrics,
    log: pino({ level: 'silent' }),
    intervalMs: 60_000,
    now: () => clock,
  });
  const age = async (queue: string) =>
    (await metrics.queueOldestAge.get()).values.find((v) => v.labels.queue === queue)?.value;
  return {
    depths,
    sampler,
    age,
    advance: (ms: number) => {
      clock += ms;
    },
    at: () => clock,
  };
}

describe('oldest message age estimate', () => {
  test('when the consumer stops receiving while messages wait, then the age keeps growing', async () => {
    const { depths, sampler, age, advance, at } = setup();
    depths.main = [30, 0];
    await sampler.sample();
    sampler.received([at() - 2_000, at() - 500]);
    assert.equal(await age('main'), 2);
    advance(60_000); // no receipt since: paused or stuck
    await sampler.sample();
    assert.equal(await age('main'), 62);
    sampler.stop();
  });

  test('when a poll comes back empty and the queue is empty, then the age is 0', async () => {
    const { depths, sampler, age, advance, at } = setup();
    sampler.received([at() - 3_000]);
    sampler.empty();
    await sampler.sample();
    assert.equal(await age('main'), 0);
    depths.main = [5, 0]; // messages arrive, nobody receives them
    await sampler.sample();
    advance(10_000);
    assert.equal(await age('main'), 10);
    sampler.stop();
  });

  test('when the DLQ holds messages, then its age counts from when it was first seen non-empty', async () => {
    const { depths, sampler, age, advance } = setup();
    await sampler.sample();
    assert.equal(await age('dlq'), 0);
    depths.dlq = [1, 0];
    await sampler.sample();
    advance(90_000);
    await sampler.sample();
    assert.equal(await age('dlq'), 90);
    depths.dlq = [0, 0];
    await sampler.sample();
    assert.equal(await age('dlq'), 0);
    sampler.stop();
  });
});
