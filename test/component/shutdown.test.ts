import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { GetQueueAttributesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { startApi } from '../../api/server.ts';
import { startConsumer } from '../../consumer/server.ts';
import { createDatabase } from '../../db/database.ts';
import { EventRepository } from '../../db/event-repository.ts';
import { acceptEvent } from '../../ingest/contract.ts';
import { toOutgoingMessage } from '../../ingest/message.ts';
import { loadConfig } from '../../platform/config.ts';
import { createShutdown } from '../../platform/shutdown.ts';
import { type Backends, orderEvent, startBackends, testLog } from '../support/stack.ts';
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
  let backends: Backends;
  let proxy: TcpProxy;
  let env: Record<string, string>;

  before(async () => {
    backends = await startBackends();
    // The processes reach PostgreSQL through a proxy that can hold their queries in flight.
    const u = new URL(backends.database.url);
    proxy = new TcpProxy({ host: u.hostname, port: Number(u.port || 5432) });
    await proxy.start();
    env = { ...backends.env, DATABASE_URL: proxy.wrap(backends.database.url), SHUTDOWN_TIMEOUT_MS: '10000' };
  });
  after(async () => {
    await proxy.stop();
    await backends.stop();
  });

  test('when the API gets SIGTERM mid-request, then readiness turns off, the request completes and intake stops', async () => {
    const config = loadConfig('api', env);
    const api = await startApi(config, testLog, { host: '127.0.0.1' });
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
      endpoint: backends.messaging.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'l', secretAccessKey: 'l' },
    });
    proxy.pause();
    const connected = proxy.nextConnection();
    const consumer = await startConsumer(config, testLog, '127.0.0.1');
    const event = orderEvent();
    const message = toOutgoingMessage(acceptEvent(event), Date.now());
    await sqs.send(
      new SendMessageCommand({ QueueUrl: backends.messaging.queueUrl, MessageBody: message.body }),
    );
    await connected; // the batch is now waiting on the database

    const exitCode = createShutdown({
      log: testLog,
      timeoutMs: config.shutdownTimeoutMs,
      steps: consumer.shutdownSteps,
    }).run('SIGTERM');
    proxy.resume();
    assert.equal(await exitCode, 0);

    const db = createDatabase({
      url: backends.database.url,
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
        QueueUrl: backends.messaging.queueUrl,
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
