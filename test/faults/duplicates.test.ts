import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ChangeMessageVisibilityBatchCommand,
  type Message,
  ReceiveMessageCommand,
} from '@aws-sdk/client-sqs';
import { attributeNames } from '../../ingest/message.ts';
import { orderEventFor, postUntilAccepted } from './support/load.ts';
import { eventually, type Scenario, scrapeMetric, withScenario } from './support/scenario.ts';

/**
 * Receives every visible message of the main queue without deleting it, then puts them all back
 * (visibility 0): each is delivered again with its receive count one higher, as after a consumer
 * that received it and died.
 */
async function forceRedeliveryOfAll(scenario: Scenario): Promise<number> {
  const held: Message[] = [];
  for (;;) {
    const { Messages = [] } = await scenario.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: scenario.queueUrl('main'),
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        VisibilityTimeout: 30,
      }),
    );
    if (Messages.length === 0) break;
    held.push(...Messages);
  }
  for (let i = 0; i < held.length; i += 10) {
    await scenario.sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: scenario.queueUrl('main'),
        Entries: held.slice(i, i + 10).map((m, j) => ({
          Id: String(j),
          ReceiptHandle: m.ReceiptHandle,
          VisibilityTimeout: 0,
        })),
      }),
    );
  }
  return held.length;
}

test('when events are published three times and SQS redelivers them, then each is stored and counted once', {
  timeout: 120_000,
}, async (t) => {
  await withScenario({}, async (scenario) => {
    const api = await scenario.startApi();
    const source = `/faults/duplicates/${crypto.randomUUID()}`;
    const load = scenario.startLoad({ targets: () => [api.baseUrl], ratePerSec: 20, source });
    const targets = () => [api.baseUrl];
    const repeated = Array.from({ length: 60 }, (_, i) => orderEventFor(source, `repeated-${i}`));
    let messagesSent = 0;

    // A backlog of copies before the consumer starts (as after an outage): each event POSTed three
    // times, concurrently, as a client retrying too eagerly would...
    await Promise.all(
      repeated.flatMap((event) =>
        [1, 2, 3].map(() =>
          postUntilAccepted({ targets, body: JSON.stringify(event), attempts: load.attempts }),
        ),
      ),
    );
    messagesSent += repeated.length * 3;
    // ...a batch POST that repeats its own events...
    const inBatch = repeated.slice(0, 5).flatMap((event) => [event, event]);
    await postUntilAccepted({
      targets,
      body: JSON.stringify(inBatch),
      contentType: 'application/cloudevents-batch+json',
      attempts: load.attempts,
    });
    messagesSent += inBatch.length;
    // ...copies put straight on the queue, as an at-least-once delivery may add...
    for (const event of repeated.slice(0, 20)) {
      await scenario.sendRaw(JSON.stringify(event), { [attributeNames.acceptedAt]: String(Date.now()) });
    }
    messagesSent += 20;
    // ...and every queued message received twice and put back: delivered a third time, to the
    // consumer, with a receive count of 3 (the queue's maxReceiveCount is 5).
    const redelivered = [await forceRedeliveryOfAll(scenario), await forceRedeliveryOfAll(scenario)];
    t.diagnostic(`${redelivered.join(' and ')} messages received and put back before the consumer started`);
    assert.ok(Math.min(...redelivered) >= messagesSent, 'every copy was redelivered');

    const consumer = await scenario.startConsumer();
    const backlog = repeated.length + load.accepted.size;
    await scenario.waitForStored(source, backlog + 40);
    await load.stop();
    const accepted = [...load.accepted, ...repeated.map((e) => e.id)];
    await scenario.waitForStored(source, accepted.length);
    await eventually('the queue to drain', async () => {
      const depth = await scenario.queueDepth('main');
      return depth.visible + depth.inFlight === 0 ? true : undefined;
    });
    await scenario.reconcile(source, accepted);

    const stored = (outcome: string) =>
      scrapeMetric(consumer.adminPort, 'ingesta_events_stored_total', { outcome });
    assert.equal(await stored('inserted'), accepted.length, 'each event inserted once');
    const duplicates = await stored('duplicate');
    assert.ok(
      duplicates >= messagesSent - repeated.length,
      `every further copy was recognised as already stored (${duplicates} of ${messagesSent - repeated.length})`,
    );
    assert.deepEqual(
      await scenario.queueDepth('dlq'),
      { visible: 0, inFlight: 0 },
      'a duplicate is not poison',
    );

    const one = (await (
      await fetch(`${api.baseUrl}/v1/events/${encodeURIComponent(source)}/repeated-0`)
    ).json()) as { id: string; source: string };
    assert.deepEqual({ id: one.id, source: one.source }, { id: 'repeated-0', source });
  });
});
