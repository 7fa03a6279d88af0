import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from '../platform/logger.ts';
import type { Metrics } from '../platform/metrics.ts';

/**
 * Samples queue depth from SQS on an interval, for the main queue and the DLQ, so dashboards and
 * alerts see backlog and poison without CloudWatch's delay.
 */
export function startQueueSampler(options: {
  sqs: SQSClient;
  queues: { main: string; dlq: string };
  metrics: Metrics;
  log: Logger;
  intervalMs: number;
}): { stop(): void; sample(): Promise<void> } {
  const { sqs, queues, metrics, log } = options;
  const sample = async () => {
    await Promise.all(
      (Object.entries(queues) as ['main' | 'dlq', string][]).map(async ([queue, url]) => {
        try {
          const { Attributes = {} } = await sqs.send(
            new GetQueueAttributesCommand({
              QueueUrl: url,
              AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
            }),
          );
          metrics.queueMessages.set(
            { queue, state: 'visible' },
            Number(Attributes.ApproximateNumberOfMessages ?? 0),
          );
          metrics.queueMessages.set(
            { queue, state: 'in_flight' },
            Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0),
          );
        } catch (err) {
          log.warn({ err, queue }, 'could not sample queue attributes');
        }
      }),
    );
  };
  void sample();
  const timer = setInterval(() => void sample(), options.intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer), sample };
}
