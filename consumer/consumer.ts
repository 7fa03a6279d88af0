import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import { trace } from '@opentelemetry/api';
import { Consumer } from 'sqs-consumer';
import type { Logger } from '../platform/logger.ts';
import type { Metrics } from '../platform/metrics.ts';
import { recordFailedCall, untraced } from '../platform/telemetry/spans.ts';
import type { BatchOutcome } from './batch-handler.ts';
import type { ReceiptObserver } from './queue-sampler.ts';

export interface ConsumerOptions {
  sqs: SQSClient;
  queueUrl: string;
  /** Handles one batch; `deadline` aborts when the batch has run for `handleTimeoutMs`. */
  handleBatch: (messages: Message[], deadline: AbortSignal) => Promise<BatchOutcome>;
  /** Resolves when the database would take a batch (up, and the tables not locked); polled while paused. */
  probeDatabase: () => Promise<void>;
  metrics: Metrics;
  log: Logger;
  batchSize: number;
  waitTimeSec: number;
  visibilityTimeoutSec: number;
  /**
   * Deadline of one batch, in ms: below the visibility timeout, so a batch never acknowledges after
   * its messages may have become visible to another poller. Past it the batch acknowledges nothing
   * more; its messages come back and storage deduplicates them.
   * Default: 90 % of the visibility timeout (54 s of 60), leaving the rest for the acknowledgement.
   */
  handleTimeoutMs?: number;
  /** Concurrent pollers, each handling one batch at a time. */
  pollers: number;
  /** Told what each poll returned, for the oldest-message estimate. */
  receipts?: ReceiptObserver;
  /** Longest time `stop()` waits for in-flight batches, in ms. */
  stopTimeoutMs: number;
}

export interface EventConsumer {
  start(): void;
  /** Stops polling (aborting idle long polls), waits for in-flight batches, resolves when all pollers stopped. */
  stop(): Promise<void>;
  /** Unix seconds of the last completed poll; 0 before the first. */
  lastPollAt(): number;
  /** True while polling is deliberately paused because the database is down. */
  isPaused(): boolean;
}

/** Wait before the next receive after `failures` failed ones in a row: 250 ms doubling to 10 s, ±20 %. */
export function receiveBackoffMs(failures: number, random: () => number = Math.random): number {
  const base = Math.min(250 * 2 ** Math.max(0, failures - 1), 10_000);
  return Math.round(base * (0.8 + 0.4 * random()));
}

/**
 * Runs `pollers` sqs-consumer instances over one queue. When a batch fails because the database is
 * unavailable, every poller pauses before its next receive until the database answers again: the
 * messages are not received (and their receive count not spent) during an outage, so a transient
 * failure never walks them into the DLQ.
 */
/** What ends a poll: its batch handled, an empty receive, or a failed (or aborted) one. */
const pollEndEvents = ['response_processed', 'empty', 'error', 'timeout_error', 'processing_error'] as const;

/**
 * Resolves once the poller's receive and the batch it returned, if any, have finished. sqs-consumer
 * clears `isPolling` just after the event that ends a poll, hence the check on the next turn.
 */
function pollSettled(poller: Consumer): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (poller.status.isPolling) return;
      for (const event of pollEndEvents) poller.off(event, onEnd);
      resolve();
    };
    const onEnd = () => setImmediate(check);
    for (const event of pollEndEvents) poller.on(event, onEnd);
    check();
  });
}

export function createConsumer(options: ConsumerOptions): EventConsumer {
  const { metrics, log } = options;
  const handleTimeoutMs = options.handleTimeoutMs ?? options.visibilityTimeoutSec * 900;
  let lastPollAt = 0;
  let stopping = false;
  let outage: Promise<void> | undefined;

  const markPoll = () => {
    lastPollAt = Date.now() / 1000;
    metrics.lastPoll.set(lastPollAt);
  };

  /** One shared probe loop per outage; pollers await it before receiving. */
  const waitForDatabase = () => {
    outage ??= (async () => {
      log.warn('database unavailable: pausing polling until it answers');
      for (let delayMs = 250; !stopping; delayMs = Math.min(delayMs * 2, 5_000)) {
        try {
          await options.probeDatabase();
          log.info('database is back: resuming polling');
          return;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, delayMs));
        }
      }
    })().finally(() => {
      outage = undefined;
    });
    return outage;
  };

  const tracer = trace.getTracer('ingesta-consumer');
  const queueName = options.queueUrl.split('/').at(-1) ?? options.queueUrl;
  const receiveAttributes = {
    'messaging.system': 'aws_sqs',
    'messaging.operation.type': 'receive',
    'messaging.operation.name': 'ReceiveMessage',
    'messaging.destination.name': queueName,
  };

  const pollers = Array.from({ length: options.pollers }, (_, index) => {
    const consumer = Consumer.create({
      queueUrl: options.queueUrl,
      sqs: options.sqs,
      batchSize: options.batchSize,
      waitTimeSeconds: options.waitTimeSec,
      visibilityTimeout: options.visibilityTimeoutSec,
      messageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
      messageAttributeNames: ['All'],
      // The handler acknowledges itself, after COMMIT; an aborted poll must not cancel those deletes.
      shouldDeleteMessages: false,
      // stop() waits for the poll itself (pollSettled): sqs-consumer's own wait checks once a second.
      pollingCompleteWaitTimeMs: 0,
      preReceiveMessageCallback: async () => {
        if (outage) await outage;
        if (stopping) throw new Error('consumer stopping');
      },
      handleMessageBatch: async (messages) => {
        markPoll();
        options.receipts?.received(messages.map((m) => Number(m.Attributes?.SentTimestamp)));
        // sqs-consumer's handleMessageTimeout applies to single messages only: the batch gets its own.
        // Past it the batch acknowledges nothing more. The poller still waits for it: one stuck in a
        // query that never returns stops polling, which is what the stall check (/livez) restarts.
        const deadline = AbortSignal.timeout(handleTimeoutMs);
        const outcome = await options.handleBatch(messages, deadline);
        if (deadline.aborted) {
          log.warn(
            { poller: index, messages: messages.length, handleTimeoutMs },
            'batch ran past its deadline: what it had not acknowledged comes back',
          );
        }
        if (outcome.kind === 'retry') void waitForDatabase();
        return [];
      },
    });
    consumer.on('empty', () => {
      markPoll();
      options.receipts?.empty();
    });
    // sqs-consumer retries a failed receive at once (it pauses only after credential errors): back
    // off exponentially instead, so an SQS outage is not a hot loop of requests and warnings.
    let receiveFailures = 0;
    const resetBackoff = () => {
      if (receiveFailures === 0) return;
      receiveFailures = 0;
      consumer.updateOption('pollingWaitTimeMs', 0);
    };
    consumer.on('empty', resetBackoff);
    consumer.on('message_received', resetBackoff);
    consumer.on('error', (err, message) => {
      if (stopping) return;
      if (message !== undefined) {
        log.warn({ err, poller: index }, 'SQS call failed');
        return;
      }
      recordFailedCall(tracer, `receive ${queueName}`, receiveAttributes, err);
      receiveFailures++;
      const retryInMs = receiveBackoffMs(receiveFailures);
      consumer.updateOption('pollingWaitTimeMs', retryInMs);
      log.warn({ err, poller: index, failures: receiveFailures, retryInMs }, 'SQS receive failed');
    });
    consumer.on('processing_error', (err) => log.error({ err, poller: index }, 'batch handler failed'));
    return consumer;
  });

  return {
    start() {
      // Polls are not traced (an empty receive every few seconds says nothing); a failed one is
      // recorded on its own, and each received message is traced from its producer's context.
      untraced(() => {
        for (const poller of pollers) poller.start();
      });
    },
    async stop() {
      stopping = true;
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, options.stopTimeoutMs);
      });
      await Promise.race([
        Promise.all(
          pollers.map((poller) => {
            poller.stop({ abort: true });
            return pollSettled(poller);
          }),
        ),
        deadline,
      ]);
      clearTimeout(timer);
    },
    lastPollAt: () => lastPollAt,
    isPaused: () => outage !== undefined,
  };
}
