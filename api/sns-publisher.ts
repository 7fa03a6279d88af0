import { PublishBatchCommand, type PublishBatchRequestEntry, type SNSClient } from '@aws-sdk/client-sns';
import { type Context, context, trace } from '@opentelemetry/api';
import type { OutgoingMessage } from '../ingest/message.ts';
import { chunkWithin } from '../platform/batch-limits.ts';
import type { Logger } from '../platform/logger.ts';
import { withSharedCallSpans } from '../platform/telemetry/spans.ts';

/** SNS PublishBatch takes at most 10 entries and 256 KiB in all per call. */
const maxEntriesPerCall = 10;
const maxBytesPerCall = 256 * 1024;

export class PublishError extends Error {
  /** Set when SNS (or the SDK) refused this message for its content: resending cannot help. */
  readonly refusedEntry: OutgoingMessage | undefined;

  constructor(message: string, options: { cause?: unknown; refusedEntry?: OutgoingMessage } = {}) {
    super(message, { cause: options.cause });
    this.name = 'PublishError';
    this.refusedEntry = options.refusedEntry;
  }
}

/**
 * True when a whole PublishBatch call failed for what one of its entries holds, not because SNS is
 * unreachable or refuses the caller: the SDK failing to encode an entry (`URIError`), or SNS answering
 * 400 with a parameter error. Credentials, throttling, 5xx and network errors are not.
 */
function isContentError(err: unknown): boolean {
  if (err instanceof URIError) return true;
  const { name, $metadata } = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return $metadata?.httpStatusCode === 400 && /^(?:InvalidParameter|ValidationError)/.test(name ?? '');
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
  /**
   * Longest a message waits for messages of other requests to share its PublishBatch call, in ms,
   * and only while another call is in flight: when SNS is idle a message goes at the end of the
   * current event-loop turn. Default 2.
   */
  lingerMs?: number;
}

const entryBytes = (m: OutgoingMessage) =>
  Buffer.byteLength(m.body) +
  Object.entries(m.attributes).reduce(
    (sum, [name, attr]) => sum + Buffer.byteLength(name) + Buffer.byteLength(attr.StringValue ?? '') + 10,
    0,
  );

/** Splits messages into PublishBatch calls respecting both the entry and the byte limit. */
export function chunkForPublishBatch(messages: OutgoingMessage[]): OutgoingMessage[][] {
  return chunkWithin(messages, entryBytes, { maxEntries: maxEntriesPerCall, maxBytes: maxBytesPerCall });
}

/** One message waiting for (or riding in) a PublishBatch call, settled on its own. */
interface Pending {
  message: OutgoingMessage;
  bytes: number;
  /** The publishing request's context: its trace gets a span for its share of the call. */
  context: Context;
  resolve(): void;
  reject(err: PublishError): void;
}

/**
 * Publishes with PublishBatch, batching messages across concurrent requests: under load up to 10
 * messages from different requests share one call (one signed HTTP request instead of ten), which
 * is where most of a publish's CPU goes. Each message settles on its own outcome, so an entry SNS
 * rejects fails only the request it belongs to. Entries SNS reports as failed are retried with
 * bounded backoff.
 */
export function createSnsPublisher(options: SnsPublisherOptions): EventPublisher {
  const { sns, topicArn, log, maxAttempts = 3, backoffMs = 25, lingerMs = 2 } = options;
  const queue: Pending[] = [];
  let queuedBytes = 0;
  let inFlight = 0;
  let scheduled: { cancel(): void } | undefined;
  const tracer = trace.getTracer('ingesta-api');
  const callAttributes = (entries: number) => ({
    'rpc.system': 'aws-api',
    'rpc.service': 'SNS',
    'rpc.method': 'PublishBatch',
    'messaging.system': 'aws.sns',
    'messaging.destination.name': topicArn.split(':').at(-1) ?? topicArn,
    'messaging.batch.message_count': entries,
  });

  async function send(chunk: Pending[]): Promise<void> {
    // Ids are positions in the first call, kept across retries so logs of one chunk line up.
    let pending = chunk.map((p, i) => ({ ...p, id: String(i) }));
    for (let attempt = 1; ; attempt++) {
      const entries: PublishBatchRequestEntry[] = pending.map((p) => ({
        Id: p.id,
        Message: p.message.body,
        MessageAttributes: p.message.attributes,
      }));
      let failed: { Id?: string; Code?: string; SenderFault?: boolean; Message?: string }[];
      try {
        // Messages of several requests share this call: each request's trace gets its own span.
        const result = await withSharedCallSpans(
          tracer,
          'SNS.PublishBatch',
          pending.map((p) => p.context),
          callAttributes(entries.length),
          () =>
            sns.send(new PublishBatchCommand({ TopicArn: topicArn, PublishBatchRequestEntries: entries })),
        );
        failed = result.Failed ?? [];
      } catch (err) {
        if (isContentError(err)) {
          // One entry spoils the call for all: each goes alone, so only its own request fails.
          if (pending.length > 1) {
            await Promise.all(pending.map((p) => send([p])));
            return;
          }
          const p = pending[0] as Pending;
          p.reject(
            new PublishError(`SNS cannot take the event (${(err as Error).name})`, {
              cause: err,
              refusedEntry: p.message,
            }),
          );
          return;
        }
        const error = new PublishError('SNS PublishBatch failed', { cause: err });
        for (const p of pending) p.reject(error);
        return;
      }
      const failedById = new Map(failed.map((f) => [f.Id, f]));
      const retry: typeof pending = [];
      const given: typeof failed = [];
      for (const p of pending) {
        const failure = failedById.get(p.id);
        if (!failure) p.resolve();
        else if (failure.SenderFault || attempt >= maxAttempts) {
          given.push(failure);
          p.reject(
            new PublishError(`SNS rejected the entry (${failure.Code ?? 'unknown'})`, {
              ...(failure.SenderFault ? { refusedEntry: p.message } : {}),
            }),
          );
        } else retry.push(p);
      }
      if (given.length > 0) {
        log.warn(
          { failed: given.map(({ Id, Code, SenderFault }) => ({ Id, Code, SenderFault })), attempt },
          'SNS rejected entries',
        );
      }
      if (retry.length === 0) return;
      pending = retry;
      await new Promise((resolve) => setTimeout(resolve, backoffMs * 2 ** (attempt - 1)));
    }
  }

  /** Takes up to one call's worth of queued messages (entry and byte limits) and sends it. */
  function sendNextChunk(): void {
    const chunk: Pending[] = [];
    let bytes = 0;
    while (queue.length > 0 && chunk.length < maxEntriesPerCall) {
      const next = queue[0] as Pending;
      if (chunk.length > 0 && bytes + next.bytes > maxBytesPerCall) break;
      chunk.push(next);
      bytes += next.bytes;
      queue.shift();
    }
    queuedBytes -= bytes;
    inFlight++;
    void send(chunk).finally(() => {
      inFlight--;
    });
  }

  const isFull = () => queue.length >= maxEntriesPerCall || queuedBytes >= maxBytesPerCall;

  function flush(): void {
    scheduled?.cancel();
    scheduled = undefined;
    while (queue.length > 0) sendNextChunk();
  }

  /** Full calls go at once; a partial one waits for the end of this turn (idle) or the linger window (busy). */
  function schedule(): void {
    while (isFull()) sendNextChunk();
    if (queue.length === 0 || scheduled) return;
    if (inFlight === 0 || lingerMs === 0) {
      const immediate = setImmediate(flush);
      scheduled = { cancel: () => clearImmediate(immediate) };
    } else {
      const timer = setTimeout(flush, lingerMs);
      scheduled = { cancel: () => clearTimeout(timer) };
    }
  }

  return {
    destination: topicArn.split(':').at(-1) ?? topicArn,
    publish(messages) {
      const settled = messages.map(
        (message) =>
          new Promise<void>((resolve, reject) => {
            const bytes = entryBytes(message);
            queue.push({ message, bytes, context: context.active(), resolve, reject });
            queuedBytes += bytes;
          }),
      );
      schedule();
      return Promise.all(settled).then(() => undefined);
    },
  };
}
