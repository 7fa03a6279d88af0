import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { GetQueueAttributesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { startApi } from '../../api/server.ts';
import { startConsumer } from '../../consumer/server.ts';
import { createDatabase } from '../../db/database.ts';
import { EventRepository } from '../../db/event-repository.ts';
import { migrateLatest } from '../../db/migrate.ts';
import { type LocalMessaging, startLocalMessaging } from '../../local/emulator.ts';
import { loadConfig } from '../../platform/config.ts';
import { toOutgoingMessage } from '../../platform/event-message.ts';
import { createShutdown } from '../../platform/shutdown.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { orderEvent, testLog } from '../support/stack.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';

const refused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });

describe('graceful shutdown', () => {
  let database: TestDatabase;
  let messaging: LocalMessaging;
  let proxy: TcpProxy;
  let env: Record<string, string>;

  before(async () => {
    [database, messaging] = await Promise.all([createTestDatabase(), startLocalMessaging()]);
    const migrator = createDatabase({
      url: database.url,
      poolMax: 1,
      statementTimeoutMs: 5_000,
      applicationName: 'test',
    });
    await migrateLatest(migrator, database.url);
    await migrator.destroy();
    const u = new URL(database.url);
    proxy = new TcpProxy({ host: u.hostname, port: Number(u.port || 5432) });
    await proxy.start();
    env = {
      DATABASE_URL: proxy.wrap(database.url),
      AWS_ENDPOINT_URL: messaging.endpoint,
      INGEST_TOPIC_ARN: messaging.topicArn,
      INGEST_QUEUE_URL: messaging.queueUrl,
      INGEST_DLQ_URL: messaging.dlqUrl,
      PORT: '0',
      ADMIN_PORT: '0',
      CONSUMER_WAIT_TIME_SEC: '1',
      SHUTDOWN_TIMEOUT_MS: '10000',
    };
  });
  after(async () => {
    await proxy.stop();
    await messaging.stop();
    await database.drop();
  });

  test('when the API gets SIGTERM mid-request, then readiness turns off, the request completes and intake stops', async () => {
    const config = loadConfig('api', env);
    const api = await startApi(config, testLog, '127.0.0.1');
    proxy.pause();
    const connected = proxy.nextConnection();
    const inFlight = fetch(`http://127.0.0.1:${api.port}/v1/events?limit=1`);
    await connected;

    const shutdown = createShutdown({
      log: testLog,
      timeoutMs: config.shutdownTimeoutMs,
      steps: api.shutdownSteps,
    });
    const exitCode = shutdown.run('SIGTERM');
    const ready = await fetch(`http://127.0.0.1:${api.adminPort}/readyz`);
    assert.equal(ready.status, 503, 'readiness is off at once');
    assert.equal(await refused(api.port), true, 'no new connections are accepted');

    proxy.resume();
    const res = await inFlight;
    assert.equal(res.status, 200, 'the in-flight request completes');
    assert.equal(await exitCode, 0);
  });

  test('when the consumer gets SIGTERM mid-batch, then the batch commits and is acknowledged before exit', async () => {
    const config = loadConfig('consumer', env);
    const sqs = new SQSClient({
      endpoint: messaging.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'l', secretAccessKey: 'l' },
    });
    proxy.pause();
    const connected = proxy.nextConnection();
    const consumer = await startConsumer(config, testLog, '127.0.0.1');
    const event = orderEvent();
    const message = toOutgoingMessage(event, Date.now());
    await sqs.send(new SendMessageCommand({ QueueUrl: messaging.queueUrl, MessageBody: message.body }));
    await connected; // the batch is now waiting on the database

    const exitCode = createShutdown({
      log: testLog,
      timeoutMs: config.shutdownTimeoutMs,
      steps: consumer.shutdownSteps,
    }).run('SIGTERM');
    proxy.resume();
    assert.equal(await exitCode, 0);

    const db = createDatabase({
      url: database.url,
      poolMax: 1,
      statementTimeoutMs: 5_000,
      applicationName: 'test',
    });
    try {
      assert.ok(await new EventRepository(db).get(event.source, event.id), 'the in-flight batch was stored');
    } finally {
      await db.destroy();
    }
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: messaging.queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    assert.equal(Attributes?.ApproximateNumberOfMessages, '0');
    assert.equal(
      Attributes?.ApproximateNumberOfMessagesNotVisible,
      '0',
      'acknowledged after COMMIT, before exit',
    );
    sqs.destroy();
  });
});
