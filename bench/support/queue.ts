import {
  DeleteMessageBatchCommand,
  PurgeQueueCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { acceptEvent } from '../../ingest/contract.ts';
import { toOutgoingMessage } from '../../ingest/message.ts';
import { createSqsClient } from '../../platform/aws.ts';
import type { Emulator } from './backends.ts';
import { createOrderEvents } from './events.ts';

/** SendMessageBatch takes at most 10 entries. */
const maxEntriesPerSend = 10;

/** The consumer's SQS client (platform/aws.ts), pointed at the emulator, for long polls of up to 1 s. */
export const sqsFor = (emulator: Emulator) =>
  createSqsClient({ region: emulator.region, endpointUrl: emulator.endpoint }, 1);

/** Deletes received messages by their receipt handles through the SDK; throws if any entry failed. */
export async function deleteReceived(
  sqs: SQSClient,
  queueUrl: string,
  receiptHandles: string[],
): Promise<void> {
  const { Failed = [] } = await sqs.send(
    new DeleteMessageBatchCommand({
      QueueUrl: queueUrl,
      Entries: receiptHandles.map((handle, i) => ({ Id: String(i), ReceiptHandle: handle })),
    }),
  );
  if (Failed.length > 0) throw new Error(`delete failed: ${JSON.stringify(Failed)}`);
}

/** Runs `worker` on `concurrency` loops until it returns false. */
export async function loops(concurrency: number, worker: () => Promise<boolean>): Promise<void> {
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (await worker()) {}
    }),
  );
}

/**
 * Puts `count` events on the queue as the API would (raw delivery: the CloudEvent body plus
 * attributes), from 8 loops of SendMessageBatch; resolves with the messages sent per second.
 */
export async function preload(
  emulator: Emulator,
  queueUrl: string,
  count: number,
  prefix: string,
): Promise<number> {
  const sqs = sqsFor(emulator);
  const next = createOrderEvents(prefix);
  let sent = 0;
  const t0 = performance.now();
  try {
    await loops(8, async () => {
      if (sent >= count) return false;
      const n = Math.min(maxEntriesPerSend, count - sent);
      sent += n;
      const acceptedAtMs = Date.now();
      const { Failed = [] } = await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: Array.from({ length: n }, (_, i) => {
            const event = next();
            const message = toOutgoingMessage(
              acceptEvent({ ...event, time: new Date(acceptedAtMs).toISOString() }),
              acceptedAtMs,
            );
            return { Id: String(i), MessageBody: message.body, MessageAttributes: message.attributes };
          }),
        }),
      );
      if (Failed.length > 0) throw new Error(`pre-loading the queue failed: ${JSON.stringify(Failed)}`);
      return true;
    });
  } finally {
    sqs.destroy();
  }
  return (count / (performance.now() - t0)) * 1000;
}

/** Empties ingesta's queue so every round starts from an emulator in the same state. */
export async function purgeQueue(emulator: Emulator): Promise<void> {
  const sqs = sqsFor(emulator);
  try {
    await sqs.send(new PurgeQueueCommand({ QueueUrl: emulator.queueUrl }));
  } finally {
    sqs.destroy();
  }
}
