import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { type BatchOutcome, rejectionAttributes } from '../../consumer/batch-handler.ts';
import { maxEventBytes } from '../../ingest/contract.ts';
import { orderEvent, type Stack, startStack } from '../support/stack.ts';

describe('consumer', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(() => stack.close());

  test('when poison sits among good messages, then the poison goes to the DLQ with its reason and the good are stored', async () => {
    const source = `/test/${crypto.randomUUID()}`;
    const good = [orderEvent({ source }), orderEvent({ source })];
    const poison = [
      { body: '{not json', code: 'NOT_JSON' },
      { body: JSON.stringify({ specversion: '1.0', id: 'x', source }), code: 'SCHEMA_VIOLATION' },
      {
        body: JSON.stringify(orderEvent({ source, data: 'x'.repeat(maxEventBytes) })),
        code: 'EVENT_TOO_LARGE',
      },
    ];
    await stack.sendRaw(JSON.stringify(good[0]));
    for (const p of poison) await stack.sendRaw(p.body, { marker: 'poison' });
    await stack.sendRaw(JSON.stringify(good[1]));
    await stack.handledMore(5);

    const stored = await stack.http.get('/v1/events').query({ source }).expect(200);
    assert.deepEqual(
      new Set(stored.body.items.map((e: { id: string }) => e.id)),
      new Set(good.map((e) => e.id)),
    );

    const dlq = await stack.drain('dlq');
    assert.equal(dlq.length, 3);
    const codes = dlq.map((m) => m.MessageAttributes?.[rejectionAttributes.code]?.StringValue).sort();
    assert.deepEqual(codes, poison.map((p) => p.code).sort());
    for (const m of dlq) {
      assert.ok(
        (m.MessageAttributes?.[rejectionAttributes.reason]?.StringValue ?? '').length > 10,
        'a readable reason',
      );
      assert.equal(m.MessageAttributes?.marker?.StringValue, 'poison', 'original attributes are kept');
    }
    assert.ok(
      dlq.some((m) => m.Body === '{not json'),
      'the original body is kept',
    );
    assert.deepEqual(await stack.queueDepth('main'), { visible: 0, inFlight: 0 }, 'nothing left to retry');
    const rejected = (await stack.consumerMetrics.eventsStored.get()).values.find(
      (v) => v.labels.outcome === 'rejected',
    );
    assert.equal(rejected?.value, 3);
  });

  test('when PostgreSQL refuses one row of a batch, then that message goes to the DLQ and the rest are stored', async () => {
    const source = `/test/${crypto.randomUUID()}`;
    const good = [orderEvent({ source }), orderEvent({ source })];
    // The contract lets through only what the schema stores; a constraint added by hand stands for
    // a row PostgreSQL refuses all the same.
    const refused = orderEvent({ source });
    await stack.db.raw(`alter table events add constraint refuse_test check (id <> '${refused.id}')`);
    await stack.sendRaw(JSON.stringify(good[0]));
    await stack.sendRaw(JSON.stringify(refused));
    await stack.sendRaw(JSON.stringify(good[1]));
    await stack.handledMore(3);
    await stack.db.raw('alter table events drop constraint refuse_test');
    const stored = await stack.http.get('/v1/events').query({ source }).expect(200);
    assert.deepEqual(
      new Set(stored.body.items.map((e: { id: string }) => e.id)),
      new Set(good.map((e) => e.id)),
    );
    const dlq = await stack.drain('dlq');
    assert.equal(dlq.length, 1);
    assert.equal(dlq[0]?.MessageAttributes?.[rejectionAttributes.code]?.StringValue, 'STORE_REJECTED');
    assert.deepEqual(await stack.queueDepth('main'), { visible: 0, inFlight: 0 });
  });

  test('when the schema does not match the code (a table missing during an upgrade), then messages wait for it instead of the DLQ', async () => {
    const source = `/test/${crypto.randomUUID()}`;
    const event = orderEvent({ source });
    await stack.db.raw('alter table event_counts rename to event_counts_elsewhere');
    const retried = once(stack.outcomes, 'outcome');
    await stack.sendRaw(JSON.stringify(event));
    const [outcome] = (await retried) as [BatchOutcome];
    assert.equal(outcome.kind, 'retry');
    assert.deepEqual(await stack.queueDepth('dlq'), { visible: 0, inFlight: 0 }, 'nothing in the DLQ');

    const stored = stack.handledMore(1);
    await stack.db.raw('alter table event_counts_elsewhere rename to event_counts');
    await stored;
    const got = await stack.http.get(`/v1/events/${encodeURIComponent(source)}/${event.id}`).expect(200);
    assert.equal(JSON.parse(got.text).id, event.id);
    assert.deepEqual(await stack.queueDepth('dlq'), { visible: 0, inFlight: 0 });
  });

  test('when an SNS envelope arrives (raw delivery off), then the event inside is stored', async () => {
    const event = orderEvent({ source: `/test/${crypto.randomUUID()}` });
    await stack.sendRaw(
      JSON.stringify({
        Type: 'Notification',
        MessageId: crypto.randomUUID(),
        TopicArn: stack.messaging.topicArn,
        Message: JSON.stringify(event),
        MessageAttributes: { ingesta_accepted_at: { Type: 'Number', Value: String(Date.now()) } },
      }),
    );
    await stack.handledMore(1);
    await stack.http.get(`/v1/events/${encodeURIComponent(event.source)}/${event.id}`).expect(200);
  });

  test('when the database is down, then messages stay unacknowledged and are stored once it is back', async () => {
    const event = orderEvent({ source: `/test/${crypto.randomUUID()}` });
    stack.consumerDbProxy.cut();
    const retried = new Promise<void>((resolve) =>
      stack.outcomes.on('outcome', function onOutcome(o) {
        if (o.kind === 'retry') {
          stack.outcomes.off('outcome', onOutcome);
          resolve();
        }
      }),
    );
    await stack.http
      .post('/v1/events')
      .set('content-type', 'application/cloudevents+json')
      .send(JSON.stringify(event))
      .expect(202);
    await retried;
    await new Promise(setImmediate); // the consumer reacts to the outcome right after the handler returns
    assert.equal(stack.consumer.isPaused(), true, 'polling pauses during the outage');
    const depth = await stack.queueDepth('main');
    assert.equal(depth.visible + depth.inFlight, 1, 'the message is still on the queue');
    await stack.http.get(`/v1/events/${encodeURIComponent(event.source)}/${event.id}`).expect(404);

    stack.consumerDbProxy.restore();
    await stack.handledMore(1);
    await stack.http.get(`/v1/events/${encodeURIComponent(event.source)}/${event.id}`).expect(200);
    assert.deepEqual(
      await stack.queueDepth('dlq'),
      { visible: 0, inFlight: 0 },
      'a transient failure never reaches the DLQ',
    );
  });
});
