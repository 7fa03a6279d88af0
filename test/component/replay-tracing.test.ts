import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { startOtlpReceiver } from '../support/otlp-receiver.ts';
import { spawnEntry } from '../support/processes.ts';
import { type Backends, orderEvent, startBackends } from '../support/stack.ts';

const PRODUCER = 4;

let backends: Backends;
before(async () => {
  backends = await startBackends();
});
after(() => backends.stop());

test('when a stored event is replayed, then the replayed message carries a trace whose send span links to the event’s original producer span', async () => {
  const sqs = new SQSClient({
    endpoint: backends.messaging.endpoint,
    region: backends.messaging.region,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const { QueueUrl: target } = await sqs.send(new CreateQueueCommand({ QueueName: 'replay-traced' }));
  const receiver = await startOtlpReceiver();
  const env = {
    ...backends.env,
    REPLAY_TARGETS: target as string,
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_BSP_SCHEDULE_DELAY: '100',
  };
  const api = spawnEntry('api', { ...env, OTEL_SERVICE_NAME: 'ingesta-api' });
  const consumer = spawnEntry('consumer', {
    ...env,
    OTEL_SERVICE_NAME: 'ingesta-consumer',
    LOG_LEVEL: 'debug',
  });
  let traceparent: string | undefined;
  try {
    const { port } = await api.waitForLog((l) => l.msg === 'api listening');
    await consumer.waitForLog((l) => l.msg === 'consumer polling');
    const base = `http://127.0.0.1:${port}`;
    const event = orderEvent({ type: 'replay.traced' });
    const posted = await fetch(`${base}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify(event),
    });
    assert.equal(posted.status, 202);
    await consumer.waitForLog((l) => l.msg === 'batch stored');
    const made = await fetch(`${base}/v1/replays`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ filter: { type: 'replay.traced' }, target }),
    });
    assert.equal(made.status, 201, await made.text());
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: target, WaitTimeSeconds: 20, MessageAttributeNames: ['All'] }),
    );
    assert.equal(Messages.length, 1);
    traceparent = Messages[0]?.MessageAttributes?.traceparent?.StringValue;
    assert.match(
      traceparent ?? '',
      /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/,
      'the replayed message carries a trace context',
    );
  } finally {
    assert.equal(await api.stop(), 0);
    assert.equal(await consumer.stop(), 0, 'the consumer stops its replays and flushes its spans');
    await receiver.stop();
    sqs.destroy();
  }
  const [, traceId] = (traceparent as string).split('-');
  // The SDK's own instrumentation may stand between: the message's context is in the replay's trace,
  // whose send span (named by the target) carries the link.
  const send = receiver.spans.find((s) => s.traceId === traceId && s.name === 'send replay-traced');
  assert.ok(
    send,
    `the replay send span was exported: ${receiver.spans.filter((s) => s.traceId === traceId).map((s) => s.name)}`,
  );
  assert.equal(send.kind, PRODUCER);
  assert.equal(send.links.length, 1, 'one link: the one event replayed');
  const [link] = send.links;
  const original = receiver.spans.find((s) => s.traceId === link?.traceId && s.spanId === link?.spanId);
  assert.ok(original, 'the linked span is the original POST’s publish span');
  assert.equal(original.service, 'ingesta-api');
  assert.equal(original.kind, PRODUCER);
  assert.notEqual(original.traceId, traceId, 'in the trace of the original request, not the replay’s');
});
