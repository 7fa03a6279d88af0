import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  type MessageAttributeValue,
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { type Context, context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { isDatabaseUnavailable, isRowRefused } from '../db/database.ts';
import type { EventRepository, NewEvent } from '../db/event-repository.ts';
import { attributeNames, encodeAttributeValue, parseMessage, type RejectionCode } from '../ingest/message.ts';
import { consumerGraceMs, type TimePolicy, timeWindow } from '../ingest/time-window.ts';
import { chunkWithin } from '../platform/batch-limits.ts';
import type { Logger } from '../platform/logger.ts';
import { type Metrics, traceExemplar } from '../platform/metrics.ts';
import { cloudEventAttributes, producerContext, withSharedCallSpans } from '../platform/telemetry/spans.ts';

/** Attributes a DLQ entry carries so an operator can tell why it is there. */
export const rejectionAttributes = {
  code: 'ingesta_rejection_code',
  reason: 'ingesta_rejection_reason',
  rejectedAt: 'ingesta_rejected_at',
} as const;

export interface BatchHandlerDeps {
  sqs: SQSClient;
  queueUrl: string;
  dlqUrl: string;
  repository: EventRepository;
  metrics: Metrics;
  log: Logger;
  /** Longest a failed batch waits before redelivery, in s (the queue's visibility timeout). */
  maxRetryDelaySec: number;
  /** Event times stored: the API's window, widened by `consumerGraceMs`. */
  timePolicy: TimePolicy;
}

interface ValidMessage {
  message: Message;
  newEvent: NewEvent;
  /** The message's own process span, a child of its producer's context. */
  span: Span;
  /** The context of that span: the message's share of a batch INSERT is traced under it. */
  context: Context;
}

interface RejectedMessage {
  message: Message;
  code: RejectionCode;
  reason: string;
}

export type BatchOutcome =
  | { kind: 'stored'; inserted: number; duplicates: number; rejected: number }
  | { kind: 'retry'; rejected: number; error: unknown };

/** The trace context of a message the contract refused, as its raw attributes carry it. */
const rawTraceCarrier = (message: Message): Record<string, string> => {
  const carrier: Record<string, string> = {};
  for (const key of [attributeNames.traceparent, attributeNames.tracestate]) {
    const value = message.MessageAttributes?.[key]?.StringValue;
    if (value) carrier[key] = value;
  }
  return carrier;
};

const receiveCount = (m: Message) => Number(m.Attributes?.ApproximateReceiveCount ?? 1);

/** SQS's limits on one SendMessageBatch call: entries, and bytes of bodies and attributes together. */
const maxEntriesPerCall = 10;
const maxBytesPerCall = 1024 * 1024;

const entryBytes = (e: SendMessageBatchRequestEntry) =>
  Buffer.byteLength(e.MessageBody ?? '') +
  Object.entries(e.MessageAttributes ?? {}).reduce(
    (sum, [name, a]) =>
      sum +
      Buffer.byteLength(name) +
      Buffer.byteLength(a.DataType ?? '') +
      Buffer.byteLength(a.StringValue ?? '') +
      (a.BinaryValue?.byteLength ?? 0),
    0,
  );

/**
 * Splits entries into SendMessageBatch calls within SQS's limits, in order. An entry too big for a
 * call of its own goes alone: SQS refuses it and the message stays on its queue, where the
 * queue's redrive policy moves it to the DLQ after maxReceiveCount deliveries.
 */
export function chunkForSendMessageBatch(
  entries: SendMessageBatchRequestEntry[],
): SendMessageBatchRequestEntry[][] {
  return chunkWithin(entries, entryBytes, { maxEntries: maxEntriesPerCall, maxBytes: maxBytesPerCall });
}

/** Printable ASCII as it is (values the API encoded already), anything else encoded. */
const attributeSafe = (value: string) => (/^[\x20-\x7E]*$/.test(value) ? value : encodeAttributeValue(value));

/**
 * A DLQ entry's attributes: the message's own, then the verdict. Every string value is encoded
 * (ingest/message.ts) so SQS takes it whatever the message or the reason holds; a reason is cut to
 * 1 KiB.
 */
function dlqAttributes(
  own: Record<string, MessageAttributeValue> | undefined,
  verdict: { code: string; reason: string; rejectedAt: string },
): Record<string, MessageAttributeValue> {
  const attributes: Record<string, MessageAttributeValue> = {};
  for (const [name, value] of Object.entries(own ?? {})) {
    attributes[name] =
      value.StringValue === undefined ? value : { ...value, StringValue: attributeSafe(value.StringValue) };
  }
  attributes[rejectionAttributes.code] = { DataType: 'String', StringValue: verdict.code };
  attributes[rejectionAttributes.reason] = {
    DataType: 'String',
    StringValue: attributeSafe(verdict.reason)
      .slice(0, 1024)
      .replace(/%[0-9A-F]?$/, ''),
  };
  attributes[rejectionAttributes.rejectedAt] = { DataType: 'String', StringValue: verdict.rejectedAt };
  return attributes;
}

/** Sends one SQS batch request and fails if any entry failed: callers treat it as all-or-nothing. */
async function allOrNothing(
  what: string,
  send: () => Promise<{ Failed?: { Id?: string; Message?: string }[] }>,
) {
  const result = await send();
  const failed = result.Failed ?? [];
  if (failed.length > 0)
    throw new Error(`${what}: ${failed.length} entries failed (${failed[0]?.Message ?? ''})`);
}

/**
 * Handles one received batch. Messages that can never succeed go to the DLQ with their reason and
 * are deleted; the rest are inserted in one statement and deleted only after it committed. When the
 * database is unavailable nothing valid is deleted: those messages come back after a backoff.
 */
export function createBatchHandler(deps: BatchHandlerDeps) {
  const { sqs, queueUrl, dlqUrl, repository, metrics, log } = deps;

  const deleteMessages = (messages: Message[]) =>
    messages.length === 0
      ? Promise.resolve()
      : allOrNothing('DeleteMessageBatch', () =>
          sqs.send(
            new DeleteMessageBatchCommand({
              QueueUrl: queueUrl,
              Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
            }),
          ),
        );

  /**
   * Copies rejects to the DLQ with their reason, then deletes them; returns how many moved. When
   * the DLQ cannot be reached the rest stay on the queue; SQS's own redrive is the backstop.
   */
  async function moveToDlq(rejected: RejectedMessage[]): Promise<number> {
    if (rejected.length === 0) return 0;
    const rejectedAt = new Date().toISOString();
    const entries = rejected.map(({ message, code, reason }, i) => ({
      Id: String(i),
      MessageBody: message.Body || '(empty body)',
      MessageAttributes: dlqAttributes(message.MessageAttributes, { code, reason, rejectedAt }),
    }));
    // Oversize rejects are common here: a batch of them must not exceed one call's limits. Each
    // entry is deleted once it is in the DLQ; one SQS refuses stays on the queue (its redrive policy
    // is the backstop) without holding back the others.
    let moved = 0;
    for (const chunk of chunkForSendMessageBatch(entries)) {
      let failed: { Id?: string; Code?: string; Message?: string }[];
      try {
        const result = await sqs.send(new SendMessageBatchCommand({ QueueUrl: dlqUrl, Entries: chunk }));
        failed = result.Failed ?? [];
      } catch (err) {
        log.error({ err, count: chunk.length }, 'could not move rejected messages to the DLQ');
        continue;
      }
      const failedIds = new Set(failed.map((f) => f.Id));
      if (failed.length > 0) {
        log.error(
          { failed: failed.map(({ Id, Code, Message }) => ({ Id, Code, Message })) },
          'the DLQ refused messages; they stay on the queue until its redrive policy moves them',
        );
      }
      const movedHere = chunk
        .filter((e) => !failedIds.has(e.Id))
        .map((e) => rejected[Number(e.Id)] as RejectedMessage);
      try {
        await deleteMessages(movedHere.map((r) => r.message));
      } catch (err) {
        log.warn({ err }, 'delete after the DLQ copy failed; the messages will be rejected again');
        continue;
      }
      moved += movedHere.length;
      metrics.eventsStored.inc({ outcome: 'rejected' }, movedHere.length);
      for (const r of movedHere)
        log.warn({ messageId: r.message.MessageId, code: r.code, reason: r.reason }, 'message moved to DLQ');
    }
    return moved;
  }

  /** Exponential backoff by delivery count, capped by the visibility timeout. */
  async function retryLater(messages: Message[]) {
    if (messages.length === 0) return;
    await sqs
      .send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: messages.map((m, i) => ({
            Id: String(i),
            ReceiptHandle: m.ReceiptHandle,
            VisibilityTimeout: Math.min(deps.maxRetryDelaySec, 2 ** Math.min(receiveCount(m), 10)),
          })),
        }),
      )
      .catch((err: unknown) =>
        log.warn({ err }, 'could not shorten visibility; messages return after the visibility timeout'),
      );
  }

  const tracer = trace.getTracer('ingesta-consumer');
  const queueName = queueUrl.split('/').at(-1) ?? queueUrl;

  /** Freshness of one stored event, with its trace as the exemplar when it was sampled. */
  const observeFreshness = (v: ValidMessage, storedAtMs: number) => {
    const value = Math.max(0, storedAtMs - v.newEvent.acceptedAtMs) / 1000;
    // With exemplars on, prom-client's observe takes an object only; empty labels record no exemplar.
    metrics.freshness.observe({ value, exemplarLabels: traceExemplar(v.span.spanContext()) ?? {} });
  };

  /** One multi-row INSERT for the messages of a batch; each message's trace gets its share of it. */
  const insertShared = (messages: ValidMessage[]) =>
    withSharedCallSpans(
      tracer,
      'INSERT events',
      messages.map((v) => v.context),
      {
        'db.system.name': 'postgresql',
        'db.operation.name': 'INSERT',
        'db.collection.name': 'events',
        'db.query.summary': 'INSERT events',
        ...(messages.length > 1 ? { 'db.operation.batch.size': messages.length } : {}),
      },
      () => repository.insertBatch(messages.map((v) => v.newEvent)),
    );

  async function storeBatch(
    valid: ValidMessage[],
    rejected: RejectedMessage[],
    deadline: AbortSignal | undefined,
  ): Promise<BatchOutcome> {
    const moved = await moveToDlq(rejected);
    let result: { inserted: { source: string; id: string }[] };
    try {
      result = await insertShared(valid);
    } catch (err) {
      // Only a data error is the rows' fault; an outage or a schema that does not match yet is not.
      if (!isRowRefused(err)) {
        if (!isDatabaseUnavailable(err))
          log.error({ err }, 'batch insert failed, not for its data: retried later');
        await retryLater(valid.map((v) => v.message));
        return { kind: 'retry', rejected: moved, error: err };
      }
      // The database refused the data itself: find the culprits one by one so the rest is stored.
      log.warn({ err }, 'batch insert refused; isolating the offending messages');
      return isolate(valid, moved, deadline);
    }
    const storedAtMs = Date.now();
    const insertedKeys = new Set(result.inserted.map((r) => `${r.source}\u0000${r.id}`));
    for (const v of valid) {
      if (insertedKeys.has(`${v.newEvent.event.source}\u0000${v.newEvent.event.id}`)) {
        observeFreshness(v, storedAtMs);
      }
    }
    const duplicates = valid.length - result.inserted.length;
    metrics.eventsStored.inc({ outcome: 'inserted' }, result.inserted.length);
    if (duplicates > 0) metrics.eventsStored.inc({ outcome: 'duplicate' }, duplicates);
    // Acknowledge only after COMMIT, and only while the batch is still ours (its deadline, below the
    // visibility timeout, has not passed). A missed delete means a redelivery, which storage absorbs.
    if (deadline?.aborted) {
      log.warn({ messages: valid.length }, 'batch stored after its deadline: not acknowledged');
    } else {
      await deleteMessages(valid.map((v) => v.message)).catch((err: unknown) =>
        log.warn({ err }, 'delete after commit failed; the messages will be redelivered and deduplicated'),
      );
    }
    log.debug({ inserted: result.inserted.length, duplicates, rejected: moved }, 'batch stored');
    return { kind: 'stored', inserted: result.inserted.length, duplicates, rejected: moved };
  }

  /**
   * Inserts message by message; rows PostgreSQL refuses go to the DLQ, anything else (an outage, a
   * schema that does not match) means retry.
   */
  async function isolate(
    valid: ValidMessage[],
    alreadyRejected: number,
    deadline: AbortSignal | undefined,
  ): Promise<BatchOutcome> {
    const outcome = { kind: 'stored' as const, inserted: 0, duplicates: 0, rejected: alreadyRejected };
    for (const v of valid) {
      // Past the deadline the rest is no longer ours: it comes back and is isolated again.
      if (deadline?.aborted) break;
      try {
        const { inserted } = await insertShared([v]);
        if (inserted.length === 1) {
          outcome.inserted++;
          metrics.eventsStored.inc({ outcome: 'inserted' });
          observeFreshness(v, Date.now());
        } else {
          outcome.duplicates++;
          metrics.eventsStored.inc({ outcome: 'duplicate' });
        }
        if (!deadline?.aborted) await deleteMessages([v.message]);
      } catch (err) {
        if (!isRowRefused(err)) {
          await retryLater([v.message]);
          return { kind: 'retry', rejected: outcome.rejected, error: err };
        }
        outcome.rejected += await moveToDlq([
          {
            message: v.message,
            code: 'STORE_REJECTED',
            reason: `PostgreSQL refused the row: ${(err as Error).message}`,
          },
        ]);
      }
    }
    return outcome;
  }

  /**
   * The process span of one message: a child of the producer context the message carries, so the
   * producer's sampling decision holds (an unsampled request leaves no consumer span) and each
   * event's journey reads as one trace, from its POST to its INSERT, whatever batch it rode in.
   */
  function startProcessSpan(message: Message, carrier: Record<string, string>, batchSize: number) {
    const parent = producerContext(carrier);
    const producer = trace.getSpanContext(parent);
    const span = tracer.startSpan(
      `process ${queueName}`,
      {
        kind: SpanKind.CONSUMER,
        links: producer ? [{ context: producer }] : [],
        attributes: {
          'messaging.system': 'aws_sqs',
          'messaging.operation.type': 'process',
          'messaging.operation.name': 'process',
          'messaging.destination.name': queueName,
          'messaging.batch.message_count': batchSize,
          ...(message.MessageId ? { 'messaging.message.id': message.MessageId } : {}),
        },
      },
      parent,
    );
    return { span, context: trace.setSpan(parent, span) };
  }

  return async function handleBatch(messages: Message[], deadline?: AbortSignal): Promise<BatchOutcome> {
    const endTimer = metrics.batchDuration.startTimer();
    const valid: ValidMessage[] = [];
    const rejected: RejectedMessage[] = [];
    const window = timeWindow(deps.timePolicy, Date.now(), consumerGraceMs);
    const spans: Span[] = [];
    for (const message of messages) {
      const parsed = parseMessage(message, { window });
      const { span, context: spanContext } = startProcessSpan(
        message,
        parsed.ok ? parsed.trace : rawTraceCarrier(message),
        messages.length,
      );
      spans.push(span);
      if (parsed.ok) {
        const { trace: _carrier, ok: _ok, ...newEvent } = parsed;
        span.setAttributes(cloudEventAttributes(newEvent.event));
        valid.push({ message, newEvent, span, context: spanContext });
      } else {
        span.setAttribute('ingesta.rejection_code', parsed.code);
        span.setStatus({ code: SpanStatusCode.ERROR, message: parsed.code });
        rejected.push({ message, code: parsed.code, reason: parsed.reason });
      }
    }
    // The batch's own steps (DLQ moves, deletes, its log lines) run in the first message's context.
    const batchContext =
      valid[0]?.context ?? (spans[0] ? trace.setSpan(context.active(), spans[0]) : context.active());
    try {
      const outcome = await context.with(batchContext, () => storeBatch(valid, rejected, deadline));
      if (outcome.kind === 'retry') {
        for (const v of valid)
          v.span.setStatus({ code: SpanStatusCode.ERROR, message: 'database unavailable' });
      }
      return outcome;
    } finally {
      for (const span of spans) span.end();
      endTimer();
    }
  };
}
