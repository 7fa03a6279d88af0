import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChangeMessageVisibilityBatchCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { attributeNames } from '../../platform/event-message.ts';
import { orderEventFor, postUntilAccepted } from './support/load.ts';
import { eventually, type Scenario, scrapeMetric, withScenario } from './support/scenario.ts';

/**
 * Receives up to 10 messages of the main queue as a competing reader would, and puts them straight
 * back (visibility 0): each is delivered again, with a higher receive count.
 */
async function forceRedelivery(scenario: Scenario): Promise<number> {
  const { Messages = [] } = await scenario.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: scenario.queueUrl('main'),
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 1,
      VisibilityTimeout: 30,
    }),
  );
  if (Messages.length === 0) return 0;
  await scenario.sqs.send(
    new ChangeMessageVisibilityBatchCommand({
      QueueUrl: scenario.queueUrl('main'),
      Entries: Messages.map((m, i) => ({
        Id: String(i),
        ReceiptHandle: m.ReceiptHandle,
        VisibilityTimeout: 0,
      })),
    }),
  );
  return Messages.length;
}

test('when events are published three times and SQS redelivers them, then each is stored and counted once', {
  timeout: 120_000,
}, async (t) => {
  await withScenario({}, async (scenario) => {
    const api = await scenario.startApi();
    const consumer = await scenario.startConsumer();
    const source = `/faults/duplicates/${crypto.randomUUID()}`;
    const load = scenario.startLoad({ targets: () => [api.baseUrl], ratePerSec: 20, source });
    const targets = () => [api.baseUrl];
    const repeated = Array.from({ length: 60 }, (_, i) => orderEventFor(source, `repeated-${i}`));
    let messagesSent = 0;

    // Each event POSTed three times, concurrently, as a client retrying too eagerly would.
    await Promise.all(
      repeated.flatMap((event) =>
        [1, 2, 3].map(() =>
          postUntilAccepted({ targets, body: JSON.stringify(event), attempts: load.attempts }),
        ),
      ),
    );
    messagesSent += repeated.length * 3;
    // A batch POST that repeats its own events.
    const inBatch = repeated.slice(0, 5).flatMap((event) => [event, event]);
    await postUntilAccepted({
      targets,
      body: JSON.stringify(inBatch),
      contentType: 'application/cloudevents-batch+json',
      attempts: load.attempts,
    });
    messagesSent += inBatch.length;
    // Copies put straight on the queue, as an SQS at-least-once redelivery would.
    for (const event of repeated.slice(0, 20)) {
      await scenario.sendRaw(JSON.stringify(event), {
        [attributeNames.acceptedAt]: String(Date.now()),
      });
    }
    messagesSent += 20;
    // And, for five seconds, redeliveries of whatever is on the queue while the consumer works on it.
    let redelivered = 0;
    for (const until = Date.now() + 5_000; Date.now() < until; )
      redelivered += await forceRedelivery(scenario);
    t.diagnostic(`${redelivered} messages received and put back by a competing reader`);

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
    assert.ok(
      (await stored('duplicate')) >= messagesSent - repeated.length,
      'every further copy was recognised as already stored',
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
