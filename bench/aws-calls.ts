/**
 * What an AWS SDK call costs the process that makes it: the CPU time of the calls ingesta makes on
 * its hot paths (SNS PublishBatch in the API, SQS ReceiveMessage and DeleteMessageBatch in the
 * consumer), through the SDK as ingesta makes them, against the same requests made by hand: the
 * same bodies, signed with SigV4 by node:crypto, sent over a kept-alive connection, their answers
 * parsed (and SQS bodies checked against their MD5, as the SDK does). It tells how much of B1's
 * and B3's gap to their baselines is the SDK's own work.
 */
import { PublishBatchCommand } from '@aws-sdk/client-sns';
import { ReceiveMessageCommand, type ReceiveMessageCommandInput } from '@aws-sdk/client-sqs';
import { acceptEvent } from '../ingest/contract.ts';
import { toOutgoingMessage } from '../ingest/message.ts';
import { createSnsClient, createSqsClient } from '../platform/aws.ts';
import { createSqsByHand, poster, publishBatchForm, publishedIds } from './support/aws-by-hand.ts';
import { startEmulator } from './support/backends.ts';
import { createOrderEvents, runPrefix } from './support/events.ts';
import { type Benchmark, compare, runBenchmarks } from './support/harness.ts';
import { deleteReceived, preload, purgeQueue } from './support/queue.ts';

/** Entries per PublishBatch: what the API's calls carried under B1's load (7.8 on average). */
const entriesPerPublish = 8;
/** Calls in flight at once, as several requests' publishes or several pollers are. */
const concurrency = 4;

/** CPU microseconds per call of `call`, on `concurrency` loops, after a warm-up. */
async function cpuPerCall(calls: number, call: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(200, calls); i++) await call();
  const before = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = 0; i < calls / concurrency; i++) await call();
    }),
  );
  const used = process.cpuUsage(before);
  return (used.user + used.system) / calls;
}

export const awsCallsBenchmark: Benchmark = {
  name: 'aws-calls',
  title: 'AWS SDK calls: CPU per call through the SDK vs the same requests by hand',
  async run(context) {
    const emulator = await startEmulator();
    const aws = { region: emulator.region, endpointUrl: emulator.endpoint };
    const sns = createSnsClient(aws);
    const sqs = createSqsClient(aws, 0);
    const snsByHand = poster(emulator, 'sns');
    const sqsByHand = createSqsByHand(emulator);
    const prefix = runPrefix('aws-calls');
    const next = createOrderEvents(prefix);
    const messages = () =>
      Array.from({ length: entriesPerPublish }, () => toOutgoingMessage(acceptEvent(next()), Date.now()));
    const calls = context.quick ? 400 : 3_000;
    const rounds = context.quick ? 1 : 3;

    const receiveParams: ReceiveMessageCommandInput = {
      QueueUrl: emulator.queueUrl,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 0,
      MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
      MessageAttributeNames: ['All'],
    };
    const targets = {
      publishSdk: async () => {
        const { Successful = [], Failed = [] } = await sns.send(
          new PublishBatchCommand({
            TopicArn: emulator.topicArn,
            PublishBatchRequestEntries: messages().map((m, i) => ({
              Id: String(i),
              Message: m.body,
              MessageAttributes: m.attributes,
            })),
          }),
        );
        if (Failed.length > 0 || Successful.length !== entriesPerPublish) {
          throw new Error(`PublishBatch: ${Successful.length} published, ${JSON.stringify(Failed)} failed`);
        }
      },
      publishByHand: async () => {
        const xml = await snsByHand.post(
          { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
          publishBatchForm(emulator.topicArn, messages()),
        );
        const ids = publishedIds(xml);
        if (ids.length !== entriesPerPublish) throw new Error(`PublishBatch: ${ids.length} published`);
      },
      receiveDeleteSdk: async () => {
        const { Messages = [] } = await sqs.send(new ReceiveMessageCommand(receiveParams));
        if (Messages.length === 0) throw new Error('the queue ran dry');
        await deleteReceived(
          sqs,
          emulator.queueUrl,
          Messages.map((m) => m.ReceiptHandle ?? ''),
        );
      },
      receiveDeleteByHand: async () => {
        const received = await sqsByHand.receive(receiveParams);
        if (received.length === 0) throw new Error('the queue ran dry');
        await sqsByHand.deleteBatch(
          emulator.queueUrl,
          received.map((m) => m.ReceiptHandle),
        );
      },
    };
    type Name = keyof typeof targets;
    const best = new Map<Name, number>();
    const seen = new Map<Name, number[]>();
    try {
      // Interleaved rounds, the lowest CPU per call kept: noise only ever adds CPU time. The order
      // turns each round, so no target always runs after the same one (and its garbage).
      const names = Object.keys(targets) as Name[];
      for (let round = 0; round < rounds; round++) {
        const turn = round % names.length;
        for (const name of [...names.slice(turn), ...names.slice(0, turn)]) {
          const sqsTarget = name.startsWith('receive');
          // Enough for every receive of the round, warm-up included, to get 10 messages.
          if (sqsTarget)
            await preload(emulator, emulator.queueUrl, (calls + 200) * 10, `${prefix}-${name}-${round}`);
          const us = await cpuPerCall(calls, targets[name]);
          seen.set(name, [...(seen.get(name) ?? []), us]);
          best.set(name, Math.min(best.get(name) ?? Number.POSITIVE_INFINITY, us));
          await purgeQueue(emulator);
        }
      }
      for (const [name, values] of seen) {
        context.progress(`  ${name}: ${values.map(Math.round).join(', ')} µs CPU per call`);
      }
    } finally {
      sns.destroy();
      sqs.destroy();
      snsByHand.destroy();
      sqsByHand.destroy();
      await emulator.stop();
    }
    const benchmark = 'AWS SDK calls';
    const us = (name: Name) => best.get(name) ?? Number.NaN;
    return [
      compare(
        {
          benchmark,
          name: `SNS PublishBatch of ${entriesPerPublish}, CPU per call through the SDK`,
          unit: 'µs',
          value: us('publishSdk'),
        },
        { name: 'the same request by hand', value: us('publishByHand') },
      ),
      compare(
        {
          benchmark,
          name: 'SQS ReceiveMessage of 10 + DeleteMessageBatch, CPU per pair through the SDK',
          unit: 'µs',
          value: us('receiveDeleteSdk'),
        },
        { name: 'the same requests by hand', value: us('receiveDeleteByHand') },
      ),
    ];
  },
};

if (import.meta.main) await runBenchmarks([awsCallsBenchmark]);
