import { PublishBatchCommand, type PublishBatchRequestEntry, type SNSClient } from '@aws-sdk/client-sns';
import type { OutgoingMessage } from '../platform/event-message.ts';
import type { Logger } from '../platform/logger.ts';

/** SNS PublishBatch takes at most 10 entries and 256 KiB in all per call. */
const maxEntriesPerCall = 10;
const maxBytesPerCall = 256 * 1024;

export class PublishError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PublishError';
  }
}

export interface EventPublisher {
  /** The topic's name, for spans and logs. */
  readonly destination: string;
  /** Resolves once SNS holds every message; rejects with PublishError otherwise. */
  publish(messages: OutgoingMessage[]): Promise<void>;
}

export interface SnsPublisherOptions {
  sns: SNSClient;
  topicArn: string;
  log: Logger;
  /** Attempts per entry, counting the first, for entries SNS reports in `Failed[]`. Default 3. */
  maxAttempts?: number;
  /** Base backoff between attempts, doubled each time. Default 25 ms. */
  backoffMs?: number;
}

const entryBytes = (m: OutgoingMessage) =>
  Buffer.byteLength(m.body) +
  Object.entries(m.attributes).reduce(
    (sum, [name, attr]) => sum + Buffer.byteLength(name) + Buffer.byteLength(attr.StringValue ?? '') + 10,
    0,
  );

/** Splits messages into PublishBatch calls respecting both the entry and the byte limit. */
export function chunkForPublishBatch(messages: OutgoingMessage[]): OutgoingMessage[][] {
  const chunks: OutgoingMessage[][] = [];
  let current: OutgoingMessage[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = entryBytes(message);
    if (current.length === maxEntriesPerCall || (current.length > 0 && bytes + size > maxBytesPerCall)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** Publishes with PublishBatch, retrying the entries SNS reports as failed with bounded backoff. */
export function createSnsPublisher(options: SnsPublisherOptions): EventPublisher {
  const { sns, topicArn, log, maxAttempts = 3, backoffMs = 25 } = options;

  async function publishChunk(chunk: OutgoingMessage[]): Promise<void> {
    let pending: PublishBatchRequestEntry[] = chunk.map((m, i) => ({
      Id: String(i),
      Message: m.body,
      MessageAttributes: m.attributes,
    }));
    for (let attempt = 1; ; attempt++) {
      let failed: { Id?: string; Code?: string; SenderFault?: boolean; Message?: string }[];
      try {
        const result = await sns.send(
          new PublishBatchCommand({ TopicArn: topicArn, PublishBatchRequestEntries: pending }),
        );
        failed = result.Failed ?? [];
      } catch (err) {
        throw new PublishError('SNS PublishBatch failed', { cause: err });
      }
      if (failed.length === 0) return;
      const failedIds = new Set(failed.map((f) => f.Id));
      const senderFault = failed.find((f) => f.SenderFault);
      if (senderFault || attempt >= maxAttempts) {
        log.warn(
          { failed: failed.map(({ Id, Code, SenderFault }) => ({ Id, Code, SenderFault })), attempt },
          'SNS rejected entries',
        );
        throw new PublishError(
          `SNS rejected ${failed.length} of ${chunk.length} entries (${failed[0]?.Code ?? 'unknown'})`,
        );
      }
      pending = pending.filter((entry) => failedIds.has(entry.Id));
      await new Promise((resolve) => setTimeout(resolve, backoffMs * 2 ** (attempt - 1)));
    }
  }

  return {
    destination: topicArn.split(':').at(-1) ?? topicArn,
    async publish(messages) {
      await Promise.all(chunkForPublishBatch(messages).map(publishChunk));
    },
  };
}
