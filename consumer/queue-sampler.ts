import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { trace } from '@opentelemetry/api';
import type { Logger } from '../platform/logger.ts';
import type { Metrics } from '../platform/metrics.ts';
import { recordFailedCall, untraced } from '../platform/telemetry/spans.ts';

type QueueName = 'main' | 'dlq';

/**
 * What the pollers saw, for the oldest-message estimate: SQS exposes the age of the oldest message
 * only as a CloudWatch metric, so the consumer derives it from what it receives.
 */
export interface ReceiptObserver {
  /** A poll returned messages with these SQS SentTimestamps (ms). */
  received(sentAtMs: number[]): void;
  /** A poll came back empty. */
  empty(): void;
}

export interface QueueSampler extends ReceiptObserver {
  stop(): void;
  sample(): Promise<void>;
}

/**
 * Samples queue depth from SQS (`GetQueueAttributes`) on an interval, for the main queue and the DLQ,
 * so dashboards and alerts see backlog and poison without CloudWatch's delay, and estimates the age
 * of the oldest message in each:
 * - main: the oldest SentTimestamp of the latest received batch, aging from there while messages
 *   wait; after an empty poll, the time since messages were first seen waiting again. A consumer
 *   that stops receiving (paused, stuck) therefore shows a growing age, not a frozen one.
 * - dlq: the time since this process first saw the DLQ non-empty (messages sit there until
 *   redriven), reset when it empties.
 * Every estimate is 0 while the queue holds no message.
 */
export function startQueueSampler(options: {
  sqs: SQSClient;
  queues: Record<QueueName, string>;
  metrics: Metrics;
  log: Logger;
  intervalMs: number;
  now?: () => number;
}): QueueSampler {
  const { sqs, queues, metrics, log, now = Date.now } = options;
  const depth: Record<QueueName, number> = { main: 0, dlq: 0 };
  const waitingSince: Record<QueueName, number | undefined> = { main: undefined, dlq: undefined };
  let oldestReceivedSentAt: number | undefined;

  const oldestAgeSec = (queue: QueueName) => {
    if (depth[queue] === 0) return 0;
    const since = queue === 'main' ? (oldestReceivedSentAt ?? waitingSince.main) : waitingSince.dlq;
    return since === undefined ? 0 : Math.max(0, now() - since) / 1000;
  };
  const gauge = metrics.queueOldestAge as unknown as { collect?: () => void };
  gauge.collect = () => {
    for (const queue of ['main', 'dlq'] as const) metrics.queueOldestAge.set({ queue }, oldestAgeSec(queue));
  };

  const sample = async () => {
    await Promise.all(
      (Object.entries(queues) as [QueueName, string][]).map(async ([queue, url]) => {
        try {
          // Sampling is not traced (a root trace every few seconds); a failure is recorded alone.
          const { Attributes = {} } = await untraced(() =>
            sqs.send(
              new GetQueueAttributesCommand({
                QueueUrl: url,
                AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
              }),
            ),
          );
          const visible = Number(Attributes.ApproximateNumberOfMessages ?? 0);
          const inFlight = Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0);
          metrics.queueMessages.set({ queue, state: 'visible' }, visible);
          metrics.queueMessages.set({ queue, state: 'in_flight' }, inFlight);
          depth[queue] = visible + inFlight;
          if (depth[queue] === 0) waitingSince[queue] = undefined;
          else waitingSince[queue] ??= now();
        } catch (err) {
          recordFailedCall(
            trace.getTracer('ingesta-consumer'),
            'SQS.GetQueueAttributes',
            {
              'rpc.system': 'aws-api',
              'rpc.service': 'SQS',
              'rpc.method': 'GetQueueAttributes',
              'ingesta.queue': queue,
            },
            err,
          );
          log.warn({ err, queue }, 'could not sample queue attributes');
        }
      }),
    );
  };
  void sample();
  const timer = setInterval(() => void sample(), options.intervalMs);
  timer.unref();
  return {
    stop: () => clearInterval(timer),
    sample,
    received(sentAtMs) {
      const valid = sentAtMs.filter(Number.isFinite);
      if (valid.length > 0) oldestReceivedSentAt = Math.min(...valid);
      depth.main = Math.max(depth.main, valid.length);
    },
    empty() {
      oldestReceivedSentAt = undefined;
      waitingSince.main = undefined;
    },
  };
}
