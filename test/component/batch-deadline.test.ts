import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import {
  GetQueueAttributesCommand,
  type Message,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { type BatchOutcome, createBatchHandler } from '../../consumer/batch-handler.ts';
import { createConsumer } from '../../consumer/consumer.ts';
import { EventRepository } from '../../db/event-repository.ts';
import { acceptEvent } from '../../ingest/contract.ts';
import { toOutgoingMessage } from '../../ingest/message.ts';
import { defaultTimePolicy } from '../../ingest/time-window.ts';
import { type LocalMessaging, startLocalMessaging } from '../../local/emulator.ts';
import { createMetrics } from '../../platform/metrics.ts';
import { type ConnectedTestDatabase, connectTestDatabase } from '../support/postgres.ts';
import { orderEvent } from '../support/stack.ts';

/** The batch deadline: a poller never holds a batch past the point its messages become visible again. */
describe('consumer batch deadline', () => {
  let messaging: LocalMessaging;
  let sqs: SQSClient;

  before(async () => {
    messaging = await startLocalMessaging();
    sqs = new SQSClient({
      endpoint: messaging.endpoint,
      region: messaging.region,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
  });
  after(async () => {
    sqs.destroy();
    await messaging.stop();
  });

  test('when a batch outlives its deadline, then it is told, and its message comes back', {
    timeout: 20_000,
  }, async () => {
    await sqs.send(new SendMessageCommand({ QueueUrl: messaging.queueUrl, MessageBody: '{"slow":true}' }));
    const lines: Record<string, unknown>[] = [];
    const calls: {
      messageId: string | undefined;
      deadline: AbortSignal;
      startedAt: number;
      endedAt?: number;
    }[] = [];
    let redelivered: () => void = () => {};
    const secondCall = new Promise<void>((resolve) => {
      redelivered = resolve;
    });
    const consumer = createConsumer({
      sqs,
      queueUrl: messaging.queueUrl,
      handleBatch: async (messages: Message[], deadline: AbortSignal): Promise<BatchOutcome> => {
        const call = {
          messageId: messages[0]?.MessageId,
          deadline,
          startedAt: Date.now(),
        } as (typeof calls)[number];
        calls.push(call);
        if (calls.length === 2) redelivered();
        // A batch slow enough to reach its deadline, which it obeys: nothing acknowledged.
        if (calls.length === 1) await once(deadline, 'abort');
        call.endedAt = Date.now();
        return { kind: 'stored', inserted: 0, duplicates: 0, rejected: 0 };
      },
      probeDatabase: async () => {},
      metrics: createMetrics(new Registry(), 'consumer'),
      log: pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line)) }),
      batchSize: 10,
      waitTimeSec: 1,
      visibilityTimeoutSec: 1,
      handleTimeoutMs: 300,
      pollers: 1,
      stopTimeoutMs: 1_000,
    });
    consumer.start();
    try {
      await secondCall;
    } finally {
      await consumer.stop();
    }
    const [first, second] = calls;
    assert.ok(first && second);
    assert.ok((first.endedAt ?? 0) - first.startedAt >= 250, 'told at its deadline, not before');
    assert.equal(second.messageId, first.messageId, 'the unacknowledged message came back');
    assert.ok(second.startedAt >= (first.endedAt ?? Infinity), 'one batch at a time per poller');
    assert.ok(lines.some((l) => /past its deadline/.test(String(l.msg)) && l.handleTimeoutMs === 300));
  });

  test('when a batch is stored after its deadline, then it is not acknowledged and its redelivery is a duplicate', async () => {
    const database: ConnectedTestDatabase = await connectTestDatabase();
    try {
      const handleBatch = createBatchHandler({
        sqs,
        queueUrl: messaging.queueUrl,
        dlqUrl: messaging.dlqUrl,
        repository: new EventRepository(database.db),
        metrics: createMetrics(new Registry(), 'consumer'),
        log: pino({ level: 'silent' }),
        maxRetryDelaySec: 1,
        timePolicy: defaultTimePolicy,
      });
      await sqs.send(new PurgeQueueCommand({ QueueUrl: messaging.queueUrl })); // the first test's message
      const message = toOutgoingMessage(acceptEvent(orderEvent({ id: 'late-1' })), Date.now(), {});
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: messaging.queueUrl,
          MessageBody: message.body,
          MessageAttributes: message.attributes,
        }),
      );
      const receive = async () =>
        (
          await sqs.send(
            new ReceiveMessageCommand({
              QueueUrl: messaging.queueUrl,
              MaxNumberOfMessages: 10,
              WaitTimeSeconds: 5,
              VisibilityTimeout: 1,
              MessageAttributeNames: ['All'],
              MessageSystemAttributeNames: ['All'],
            }),
          )
        ).Messages ?? [];
      const first = await receive();
      const late = await handleBatch(first, AbortSignal.abort());
      assert.deepEqual(late, { kind: 'stored', inserted: 1, duplicates: 0, rejected: 0 });
      const again = await receive();
      assert.equal(again[0]?.MessageId, first[0]?.MessageId, 'not deleted: it came back');
      assert.deepEqual(await handleBatch(again, new AbortController().signal), {
        kind: 'stored',
        inserted: 0,
        duplicates: 1,
        rejected: 0,
      });
      const { Attributes } = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: messaging.queueUrl,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      assert.deepEqual(
        [Attributes?.ApproximateNumberOfMessages, Attributes?.ApproximateNumberOfMessagesNotVisible],
        ['0', '0'],
        'acknowledged in time: gone',
      );
    } finally {
      await database.drop();
    }
  });
});
