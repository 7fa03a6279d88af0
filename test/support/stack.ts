import { EventEmitter, once } from 'node:events';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Express } from 'express';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import supertest from 'supertest';
import { createApp, type SecurityOptions } from '../../api/app.ts';
import { loadOpenApiDocument } from '../../api/openapi.ts';
import { createSnsPublisher, type EventPublisher } from '../../api/sns-publisher.ts';
import { type BatchOutcome, createBatchHandler } from '../../consumer/batch-handler.ts';
import { createConsumer, type EventConsumer } from '../../consumer/consumer.ts';
import { createDatabase, type Database } from '../../db/database.ts';
import { EventRepository } from '../../db/event-repository.ts';
import { migrateLatest } from '../../db/migrate.ts';
import { recordAuditSamples } from '../../db/store-audit.ts';
import type { CloudEvent } from '../../ingest/contract.ts';
import { type LocalMessaging, startLocalMessaging } from '../../local/emulator.ts';
import { createSnsClient, createSqsClient } from '../../platform/aws.ts';
import { type Config, loadConfig } from '../../platform/config.ts';
import { createMetrics, type Metrics } from '../../platform/metrics.ts';
import { ReplayStore } from '../../replay/store.ts';
import { createReplayer } from '../../replay/worker.ts';
import { createTestDatabase, type TestDatabase } from './postgres.ts';
import { TcpProxy } from './tcp-proxy.ts';

export const testLog = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** The worked example of DESIGN.md, with a unique id. */
export function orderEvent(overrides: Record<string, unknown> = {}): CloudEvent {
  return {
    specversion: '1.0',
    id: `order-${crypto.randomUUID()}`,
    source: '/shop/web',
    type: 'order.created',
    subject: 'user-42',
    data: { productId: 'p-7', quantity: 2 },
    ...overrides,
  };
}

export interface Stack {
  config: Config;
  database: TestDatabase;
  messaging: LocalMessaging;
  /** Proxy between the consumer and PostgreSQL: `cut()` takes the database away from the consumer. */
  consumerDbProxy: TcpProxy;
  db: Database;
  repository: EventRepository;
  apiMetrics: Metrics;
  consumerMetrics: Metrics;
  app: Express;
  http: ReturnType<typeof supertest>;
  sqs: SQSClient;
  consumer: EventConsumer;
  /** Every batch outcome the consumer reports, as it happens. */
  outcomes: EventEmitter<{ outcome: [BatchOutcome] }>;
  /** Resolves once the consumer has handled (inserted, found duplicate or rejected) `count` more messages. */
  handledMore(count: number): Promise<void>;
  queueDepth(queue: 'main' | 'dlq'): Promise<{ visible: number; inFlight: number }>;
  /** Receives and deletes every visible message of a queue. */
  drain(queue: 'main' | 'dlq'): Promise<Message[]>;
  sendRaw(body: string, attributes?: Record<string, string>): Promise<void>;
  /** URLs of the queues made for `replayQueues`, in order. */
  replayTargets: string[];
  /** The stack's replay worker (consumer side), running when `replayQueues` were given. */
  replayer: ReturnType<typeof createReplayer>;
  close(): Promise<void>;
}

/**
 * The whole pipeline in one process, wired like the two `main`s: real PostgreSQL, the SNS/SQS
 * emulator over HTTP, the Express app (with response validation on) and the consumer.
 */
export interface Backends {
  database: TestDatabase;
  messaging: LocalMessaging;
  /** The environment a spawned api or consumer needs to use them (ports chosen by the OS). */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/** A fresh migrated database and the SNS/SQS emulator, for tests that run ingesta as processes. */
export async function startBackends(): Promise<Backends> {
  const [database, messaging] = await Promise.all([createTestDatabase(), startLocalMessaging()]);
  const migrator = createDatabase({
    url: database.url,
    poolMax: 1,
    statementTimeoutMs: 5_000,
    applicationName: 'test',
  });
  try {
    await migrateLatest(migrator, database.url);
  } finally {
    await migrator.destroy();
  }
  return {
    database,
    messaging,
    env: {
      DATABASE_URL: database.url,
      AUTH_DISABLED: 'true',
      AWS_ENDPOINT_URL: messaging.endpoint,
      INGEST_TOPIC_ARN: messaging.topicArn,
      INGEST_QUEUE_URL: messaging.queueUrl,
      INGEST_DLQ_URL: messaging.dlqUrl,
      PORT: '0',
      ADMIN_PORT: '0',
      CONSUMER_WAIT_TIME_SEC: '1',
    },
    async stop() {
      await messaging.stop();
      await database.drop();
    },
  };
}

export interface StackOptions {
  /** Start the consumer (default true). */
  consumer?: boolean;
  env?: Record<string, string>;
  security?: SecurityOptions;
  /** Wraps the real SNS publisher, e.g. to hold a publish in flight. */
  wrapPublisher?: (publisher: EventPublisher) => EventPublisher;
  /** Queues the stack creates and allows replays to (REPLAY_TARGETS), by name; their URLs are in `replayTargets`. */
  replayQueues?: string[];
  /** Replay worker options (lease, idle wait); the worker starts when `replayQueues` is given. */
  replayer?: { leaseSec?: number; idleMs?: number };
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const database = await createTestDatabase();
  const messaging = await startLocalMessaging();
  const dbUrl = new URL(database.url);
  const consumerDbProxy = new TcpProxy({ host: dbUrl.hostname, port: Number(dbUrl.port || 5432) });
  await consumerDbProxy.start();
  const env = {
    DATABASE_URL: database.url,
    // Component tests that test auth pass their own authenticator (options.security).
    AUTH_DISABLED: 'true',
    AWS_REGION: messaging.region,
    AWS_ENDPOINT_URL: messaging.endpoint,
    INGEST_TOPIC_ARN: messaging.topicArn,
    INGEST_QUEUE_URL: messaging.queueUrl,
    INGEST_DLQ_URL: messaging.dlqUrl,
    CONSUMER_WAIT_TIME_SEC: '1',
    DATABASE_STATEMENT_TIMEOUT_MS: '2000',
    // Most component tests probe the edges of what storage can keep, back to year 0001.
    EVENT_TIME_PAST_MONTHS: '120000',
    ...options.env,
  };
  const config = loadConfig('api', env);
  const consumerConfig = loadConfig('consumer', env);

  const db = createDatabase({ ...config.database, applicationName: 'ingesta-test' });
  await migrateLatest(db, config.database.url);
  const repository = new EventRepository(db);

  const apiMetrics = createMetrics(new Registry(), 'api');
  const sns = createSnsClient(config.aws);
  const snsPublisher = createSnsPublisher({ sns, topicArn: config.api.topicArn, log: testLog });
  const publisher = options.wrapPublisher ? options.wrapPublisher(snsPublisher) : snsPublisher;
  const sqsForSetup = createSqsClient(config.aws, 1);
  const replayTargets: string[] = [];
  for (const name of options.replayQueues ?? []) {
    const { QueueUrl } = await sqsForSetup.send(new CreateQueueCommand({ QueueName: name }));
    replayTargets.push(QueueUrl as string);
  }
  sqsForSetup.destroy();
  const app = createApp({
    log: testLog,
    metrics: apiMetrics,
    repository,
    publisher,
    // Off unless a test asks for it: a fire-and-forget write must not outlive the stack.
    auditSamples: {
      rate: options.env?.AUDIT_SAMPLE_RATE ? config.api.auditSampleRate : 0,
      record: (keys, acceptedAt) => recordAuditSamples(db, keys, acceptedAt),
    },
    openApiDocument: loadOpenApiDocument(),
    validateResponses: true,
    replays: { store: new ReplayStore(db), allowedTargets: replayTargets, maxRatePerSec: 10_000 },
    timePolicy: config.eventTime,
    ...(options.security ? { security: options.security } : {}),
  });

  const consumerDb = createDatabase({
    ...consumerConfig.database,
    url: consumerDbProxy.wrap(consumerConfig.database.url),
    applicationName: 'ingesta-test-consumer',
  });
  const consumerRepository = new EventRepository(consumerDb);
  const consumerMetrics = createMetrics(new Registry(), 'consumer');
  const sqs = createSqsClient(config.aws, consumerConfig.consumer.waitTimeSec);
  const handleBatch = createBatchHandler({
    sqs,
    queueUrl: consumerConfig.consumer.queueUrl,
    dlqUrl: consumerConfig.consumer.dlqUrl,
    repository: consumerRepository,
    metrics: consumerMetrics,
    log: testLog,
    maxRetryDelaySec: consumerConfig.consumer.visibilityTimeoutSec,
    timePolicy: consumerConfig.eventTime,
  });
  const outcomes = new EventEmitter<{ outcome: [BatchOutcome] }>();
  let handled = 0;
  let expected = 0;
  const consumer = createConsumer({
    sqs,
    queueUrl: consumerConfig.consumer.queueUrl,
    handleBatch: async (messages) => {
      const outcome = await handleBatch(messages);
      if (outcome.kind === 'stored') handled += outcome.inserted + outcome.duplicates + outcome.rejected;
      else handled += outcome.rejected;
      outcomes.emit('outcome', outcome);
      return outcome;
    },
    probeDatabase: () => consumerRepository.probeWrites(),
    metrics: consumerMetrics,
    log: testLog,
    batchSize: consumerConfig.consumer.batchSize,
    waitTimeSec: consumerConfig.consumer.waitTimeSec,
    visibilityTimeoutSec: consumerConfig.consumer.visibilityTimeoutSec,
    pollers: consumerConfig.consumer.pollers,
    stopTimeoutMs: 10_000,
  });
  if (options.consumer !== false) consumer.start();
  const replayer = createReplayer({
    store: new ReplayStore(consumerDb),
    sqs,
    sns,
    log: testLog,
    leaseSec: options.replayer?.leaseSec ?? 5,
    idleMs: options.replayer?.idleMs ?? 100,
  });
  if (replayTargets.length > 0) replayer.start();

  const queueUrl = (queue: 'main' | 'dlq') => (queue === 'main' ? messaging.queueUrl : messaging.dlqUrl);

  return {
    config,
    database,
    messaging,
    consumerDbProxy,
    db,
    repository,
    apiMetrics,
    consumerMetrics,
    app,
    http: supertest(app),
    sqs,
    consumer,
    outcomes,
    async handledMore(count) {
      expected += count;
      while (handled < expected) await once(outcomes, 'outcome');
    },
    async queueDepth(queue) {
      const { Attributes = {} } = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: queueUrl(queue),
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      return {
        visible: Number(Attributes.ApproximateNumberOfMessages),
        inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible),
      };
    },
    async drain(queue) {
      const all: Message[] = [];
      for (;;) {
        const { Messages = [] } = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl(queue),
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 0,
            MessageAttributeNames: ['All'],
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          }),
        );
        if (Messages.length === 0) return all;
        all.push(...Messages);
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl(queue),
            Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
          }),
        );
      }
    },
    async sendRaw(body, attributes = {}) {
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: messaging.queueUrl,
          MessageBody: body,
          MessageAttributes: Object.fromEntries(
            Object.entries(attributes).map(([k, v]) => [k, { DataType: 'String', StringValue: v }]),
          ),
        }),
      );
    },
    replayTargets,
    replayer,
    async close() {
      await replayer.stop();
      await consumer.stop();
      await sqs.send(new PurgeQueueCommand({ QueueUrl: messaging.queueUrl })).catch(() => undefined);
      sqs.destroy();
      sns.destroy();
      await consumerDb.destroy();
      await db.destroy();
      await consumerDbProxy.stop();
      await messaging.stop();
      await database.drop();
    },
  };
}
