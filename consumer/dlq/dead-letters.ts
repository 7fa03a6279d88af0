import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  type ReceiveMessageCommandInput,
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  type SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import { rejectionAttributes } from '../batch-handler.ts';

/** One message of the dead-letter queue, as an operator needs to see it. */
export interface DeadLetter {
  messageId: string;
  /**
   * Why the consumer rejected it (`NOT_JSON`, `SCHEMA_VIOLATION`, `EVENT_TOO_LARGE`, `STORE_REJECTED`);
   * undefined when SQS moved it after `maxReceiveCount` failed receives (retries exhausted).
   */
  code: string | undefined;
  reason: string | undefined;
  /** ISO time the consumer rejected it. */
  rejectedAt: string | undefined;
  /** ISO time SQS took the message into the DLQ (or into the main queue, for retries exhausted). */
  sentAt: string | undefined;
  /** Receives of this DLQ message so far, this listing's included. */
  receiveCount: number;
  body: string;
}

const receiveAttributes: Pick<
  ReceiveMessageCommandInput,
  'MessageAttributeNames' | 'MessageSystemAttributeNames'
> = {
  MessageAttributeNames: ['All'],
  MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
};

const rejectionAttributeNames = new Set<string>(Object.values(rejectionAttributes));

export function describeDeadLetter(message: Message): DeadLetter {
  const attribute = (name: string) => message.MessageAttributes?.[name]?.StringValue;
  const sentMs = Number(message.Attributes?.SentTimestamp);
  return {
    messageId: message.MessageId ?? '',
    code: attribute(rejectionAttributes.code),
    reason: attribute(rejectionAttributes.reason),
    rejectedAt: attribute(rejectionAttributes.rejectedAt),
    sentAt: Number.isFinite(sentMs) ? new Date(sentMs).toISOString() : undefined,
    receiveCount: Number(message.Attributes?.ApproximateReceiveCount ?? 0),
    body: message.Body ?? '',
  };
}

/** The attributes a redriven message keeps: its own (type, source, accepted-at, trace context), not the verdict. */
export function redriveAttributes(
  attributes: Record<string, MessageAttributeValue> = {},
): Record<string, MessageAttributeValue> {
  return Object.fromEntries(
    Object.entries(attributes).filter(([name]) => !rejectionAttributeNames.has(name)),
  );
}

async function receive(sqs: SQSClient, queueUrl: string, max: number, visibilityTimeoutSec: number) {
  const { Messages = [] } = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: Math.min(10, max),
      // A long poll asks every SQS server, so an empty answer means the queue has nothing visible.
      WaitTimeSeconds: 1,
      VisibilityTimeout: visibilityTimeoutSec,
      ...receiveAttributes,
    }),
  );
  return Messages;
}

/** Makes messages visible again at once, for the next reader. */
async function release(sqs: SQSClient, queueUrl: string, messages: Message[]): Promise<void> {
  for (let i = 0; i < messages.length; i += 10) {
    await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: messages
          .slice(i, i + 10)
          .map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0 })),
      }),
    );
  }
}

export interface ListOptions {
  sqs: SQSClient;
  dlqUrl: string;
  /** Stop after this many messages. Default: all. */
  max?: number;
}

/**
 * Reads the DLQ without consuming it: each message is received once (hidden for 30 s so the next
 * receive returns others), then made visible again. Receiving counts as a receive on the DLQ, which
 * has no redrive policy of its own, so nothing moves.
 */
export async function listDeadLetters(options: ListOptions): Promise<DeadLetter[]> {
  const { sqs, dlqUrl } = options;
  const max = options.max ?? Number.POSITIVE_INFINITY;
  const seen = new Map<string, Message>();
  try {
    while (seen.size < max) {
      const messages = await receive(sqs, dlqUrl, max - seen.size, 30);
      if (messages.length === 0) break;
      for (const m of messages) seen.set(m.MessageId ?? '', m);
    }
  } finally {
    await release(sqs, dlqUrl, [...seen.values()]);
  }
  return [...seen.values()].map(describeDeadLetter);
}

/** The queue's approximate number of messages, visible and in flight (SQS counts are approximate). */
export async function countMessages(options: { sqs: SQSClient; queueUrl: string }): Promise<number> {
  const { Attributes = {} } = await options.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: options.queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return (
    Number(Attributes.ApproximateNumberOfMessages ?? 0) +
    Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0)
  );
}

export interface RedriveOptions {
  sqs: SQSClient;
  dlqUrl: string;
  queueUrl: string;
  /** Move at most this many messages. Default: all. */
  max?: number;
  /** Called after each message is back on the main queue and gone from the DLQ. */
  onMoved?: (deadLetter: DeadLetter) => void;
}

export interface RedriveResult {
  moved: number;
  /** Messages that could not be sent back; they stay in the DLQ. */
  failed: { messageId: string; error: string }[];
}

/** Stays under SQS's per-call payload limit whatever the queue's limit (256 KiB to 1 MiB). */
const maxBatchBytes = 256 * 1024;

const entryBytes = (entry: SendMessageBatchRequestEntry) =>
  Buffer.byteLength(entry.MessageBody ?? '') +
  Object.entries(entry.MessageAttributes ?? {}).reduce(
    (sum, [name, value]) => sum + Buffer.byteLength(name) + Buffer.byteLength(value.StringValue ?? '') + 16,
    0,
  );

/**
 * Moves messages from the DLQ back to the main queue by receiving, sending and then deleting them,
 * stripping the rejection attributes. A crash between send and delete leaves a copy in both queues,
 * which the idempotent store absorbs. Messages that reach the DLQ after the redrive started (the
 * same poison rejected again) are left there, so a redrive always ends.
 */
export async function redriveDeadLetters(options: RedriveOptions): Promise<RedriveResult> {
  const { sqs, dlqUrl, queueUrl } = options;
  const max = options.max ?? Number.POSITIVE_INFINITY;
  const startedAtMs = Date.now();
  const result: RedriveResult = { moved: 0, failed: [] };
  // Received but not moved (newer than the redrive, or not accepted by SQS): kept hidden until the
  // end so the next receive returns other messages, then made visible again.
  const keptBack: Message[] = [];
  try {
    while (result.moved + result.failed.length < max) {
      const received = await receive(sqs, dlqUrl, max - result.moved - result.failed.length, 60);
      if (received.length === 0) break;
      const older = received.filter((m) => Number(m.Attributes?.SentTimestamp ?? 0) < startedAtMs);
      keptBack.push(...received.filter((m) => !older.includes(m)));
      for (const chunk of chunkForSend(older)) {
        const { Successful = [], Failed = [] } = await sqs.send(
          new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: chunk.map((c) => c.entry) }),
        );
        const sent = new Set(Successful.map((s) => s.Id));
        const done = chunk.filter((c) => sent.has(c.entry.Id));
        if (done.length > 0) {
          await sqs.send(
            new DeleteMessageBatchCommand({
              QueueUrl: dlqUrl,
              Entries: done.map((c) => ({ Id: c.entry.Id, ReceiptHandle: c.message.ReceiptHandle })),
            }),
          );
        }
        for (const c of done) options.onMoved?.(describeDeadLetter(c.message));
        result.moved += done.length;
        for (const c of chunk.filter((c) => !sent.has(c.entry.Id))) {
          const error = Failed.find((f) => f.Id === c.entry.Id);
          result.failed.push({
            messageId: c.message.MessageId ?? '',
            error: `${error?.Code ?? 'unknown'}: ${error?.Message ?? 'not sent'}`,
          });
          keptBack.push(c.message);
        }
      }
    }
  } finally {
    await release(sqs, dlqUrl, keptBack);
  }
  return result;
}

interface PendingSend {
  message: Message;
  entry: SendMessageBatchRequestEntry;
}

/** SendMessageBatch calls of at most 10 entries and `maxBatchBytes`; a bigger message goes alone. */
function chunkForSend(messages: Message[]): PendingSend[][] {
  const chunks: PendingSend[][] = [];
  let bytes = 0;
  for (const [i, message] of messages.entries()) {
    const entry: SendMessageBatchRequestEntry = {
      Id: String(i),
      MessageBody: message.Body ?? '',
      MessageAttributes: redriveAttributes(message.MessageAttributes),
    };
    const size = entryBytes(entry);
    const last = chunks.at(-1);
    if (!last || last.length === 10 || bytes + size > maxBatchBytes) {
      chunks.push([{ message, entry }]);
      bytes = size;
    } else {
      last.push({ message, entry });
      bytes += size;
    }
  }
  return chunks;
}

async function queueArn(sqs: SQSClient, queueUrl: string): Promise<string> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  if (!Attributes?.QueueArn) throw new Error(`no QueueArn for ${queueUrl}`);
  return Attributes.QueueArn;
}

/**
 * Starts an SQS message move task from the DLQ to the main queue (AWS only; emulators lack it). SQS
 * moves every message in the background, attributes unchanged; returns the task handle.
 */
export async function startRedriveTask(options: {
  sqs: SQSClient;
  dlqUrl: string;
  queueUrl: string;
}): Promise<{ taskHandle: string; sourceArn: string; destinationArn: string }> {
  const [sourceArn, destinationArn] = await Promise.all([
    queueArn(options.sqs, options.dlqUrl),
    queueArn(options.sqs, options.queueUrl),
  ]);
  const { TaskHandle } = await options.sqs.send(
    new StartMessageMoveTaskCommand({ SourceArn: sourceArn, DestinationArn: destinationArn }),
  );
  return { taskHandle: TaskHandle ?? '', sourceArn, destinationArn };
}
