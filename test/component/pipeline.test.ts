import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { orderEvent, type Stack, startStack } from '../support/stack.ts';

const uniqueSource = () => `/test/${crypto.randomUUID()}`;

describe('pipeline: POST → SNS → SQS → consumer → PostgreSQL → GET', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(() => stack.close());

  test('when one event is posted, then GET answers it as sent in structured mode, with the metadata apart', async () => {
    const event = orderEvent({
      source: uniqueSource(),
      time: '2026-11-28T10:15:30.123Z',
      traceid: 'abc',
      n: 3,
    });
    const post = await stack.http
      .post('/v1/events')
      .set('content-type', 'application/cloudevents+json')
      .send(JSON.stringify(event))
      .expect(202);
    assert.deepEqual(post.body, { accepted: [{ source: event.source, id: event.id }] });
    await stack.handledMore(1);

    const one = await stack.http
      .get(`/v1/events/${encodeURIComponent(event.source)}/${event.id}`)
      .expect(200);
    assert.match(one.headers['content-type'] ?? '', /^application\/cloudevents\+json/);
    assert.equal(one.text, JSON.stringify(event), 'the event as sent: attributes, extensions, data, time');
    assert.equal(one.headers['ingesta-time'], '2026-11-28T10:15:30.123000Z');
    assert.equal(one.headers['ingesta-time-defaulted'], 'false');
    const acceptedAt = Date.parse(one.headers['ingesta-accepted-at'] ?? '');
    assert.ok(Date.parse(one.headers['ingesta-stored-at'] ?? '') >= acceptedAt);

    const list = await stack.http.get('/v1/events').query({ source: event.source }).expect(200);
    assert.deepEqual(list.body.items, [event]);
    assert.equal(list.body.metadata.length, 1);
    assert.equal(list.body.metadata[0].time, '2026-11-28T10:15:30.123000Z');
    assert.equal(list.body.nextCursor, undefined);
  });

  test('when a batch is posted as cloudevents-batch+json, then every event is stored once', async () => {
    const source = uniqueSource();
    const events = Array.from({ length: 25 }, (_, i) =>
      orderEvent({ source, data: { i, nested: { ok: [1, 'two', null] } } }),
    );
    const post = await stack.http
      .post('/v1/events')
      .set('content-type', 'application/cloudevents-batch+json')
      .send(JSON.stringify(events))
      .expect(202);
    assert.equal(post.body.accepted.length, 25);
    await stack.handledMore(25);

    const list = await stack.http.get('/v1/events').query({ source, limit: 1000 }).expect(200);
    assert.equal(list.body.items.length, 25);
    const byId = new Map(list.body.items.map((e: { id: string }) => [e.id, e]));
    for (const [i, event] of events.entries()) {
      assert.deepEqual((byId.get(event.id) as { data: unknown }).data, {
        i,
        nested: { ok: [1, 'two', null] },
      });
    }
  });

  test('when an event has no time, then it is filed under its receipt time and read back without one', async () => {
    const before = Date.now();
    const event = orderEvent({ source: uniqueSource() });
    await stack.http.post('/v1/events').set('content-type', 'application/json').send(event).expect(202);
    await stack.handledMore(1);
    const one = await stack.http
      .get(`/v1/events/${encodeURIComponent(event.source)}/${event.id}`)
      .expect(200);
    assert.equal(one.text, JSON.stringify(event), 'no time is added to the event');
    assert.equal(one.headers['ingesta-time-defaulted'], 'true');
    const time = Date.parse(one.headers['ingesta-time'] ?? '');
    assert.ok(
      time >= before - 1 && time <= Date.now(),
      `time ${one.headers['ingesta-time']} is the receipt time`,
    );
  });

  test('when the same (source, id) is sent twice and SQS redelivers it, then it is stored and counted once', async () => {
    const source = uniqueSource();
    const event = orderEvent({ source, time: '2026-11-28T11:00:00Z' });
    for (let i = 0; i < 2; i++) {
      await stack.http
        .post('/v1/events')
        .set('content-type', 'application/cloudevents+json')
        .send(JSON.stringify(event))
        .expect(202);
    }
    // A redelivery is the same message again, as SQS does after a visibility timeout.
    await stack.sendRaw(JSON.stringify(event), { type: event.type, source });
    await stack.handledMore(3);

    const list = await stack.http.get('/v1/events').query({ source }).expect(200);
    assert.equal(list.body.items.length, 1);
    const stats = await stack.http
      .get('/v1/stats')
      .query({ from: '2026-11-28T00:00:00Z', to: '2026-11-29T00:00:00Z', bucket: 'day', source })
      .expect(200);
    assert.deepEqual(stats.body.buckets, [
      { start: '2026-11-28T00:00:00.000000Z', type: 'order.created', count: 1 },
    ]);
    const duplicates = await stack.consumerMetrics.eventsStored.get();
    const dup = duplicates.values.find((v) => v.labels.outcome === 'duplicate');
    assert.ok((dup?.value ?? 0) >= 2, 'duplicates are counted as such');
  });

  test('when N events are paged by small pages, then each comes back exactly once, newest first', async () => {
    const source = uniqueSource();
    // Several events share a timestamp so the keyset tie-break is exercised.
    const events = Array.from({ length: 47 }, (_, i) =>
      orderEvent({ source, time: new Date(Date.UTC(2026, 10, 1, 12, 0, Math.floor(i / 3))).toISOString() }),
    );
    await stack.http
      .post('/v1/events')
      .set('content-type', 'application/cloudevents-batch+json')
      .send(JSON.stringify(events))
      .expect(202);
    await stack.handledMore(47);

    const seen: { id: string; time: string }[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await stack.http
        .get('/v1/events')
        .query({ source, limit: 5, ...(cursor ? { cursor } : {}) })
        .expect(200);
      seen.push(...page.body.items);
      cursor = page.body.nextCursor;
      pages++;
    } while (cursor);
    assert.equal(pages, 10);
    assert.equal(seen.length, 47);
    assert.equal(new Set(seen.map((e) => e.id)).size, 47, 'no event repeats');
    assert.deepEqual(new Set(seen.map((e) => e.id)), new Set(events.map((e) => e.id)), 'no event is skipped');
    for (let i = 1; i < seen.length; i++) {
      assert.ok(Date.parse(seen[i - 1]!.time) >= Date.parse(seen[i]!.time), 'newest first');
    }
  });

  test('when filters combine, then only matching events come back', async () => {
    const source = uniqueSource();
    const events = [
      orderEvent({ source, subject: 'user-42', time: '2026-10-01T00:00:00Z' }),
      orderEvent({ source, subject: 'user-43', time: '2026-10-02T00:00:00Z' }),
      orderEvent({ source, subject: 'user-42', type: 'order.cancelled', time: '2026-10-03T00:00:00Z' }),
      orderEvent({ source, subject: 'user-42', time: '2026-10-04T00:00:00Z' }),
    ];
    await stack.http
      .post('/v1/events')
      .set('content-type', 'application/cloudevents-batch+json')
      .send(JSON.stringify(events))
      .expect(202);
    await stack.handledMore(4);
    const res = await stack.http
      .get('/v1/events')
      .query({
        source,
        type: 'order.created',
        subject: 'user-42',
        from: '2026-10-01T00:00:00Z',
        to: '2026-10-04T00:00:00Z',
      })
      .expect(200);
    assert.deepEqual(
      res.body.items.map((e: { id: string }) => e.id),
      [events[0]!.id],
    );
  });

  test('when events span buckets, then stats count per bucket and type', async () => {
    const source = uniqueSource();
    const at = (h: number, m: number) => new Date(Date.UTC(2026, 8, 15, h, m, 30)).toISOString();
    const events = [
      orderEvent({ source, time: at(9, 0) }),
      orderEvent({ source, time: at(9, 0) }),
      orderEvent({ source, time: at(9, 59) }),
      orderEvent({ source, time: at(10, 1) }),
      orderEvent({ source, type: 'order.paid', time: at(10, 1) }),
    ];
    await stack.http
      .post('/v1/events')
      .set('content-type', 'application/cloudevents-batch+json')
      .send(JSON.stringify(events))
      .expect(202);
    await stack.handledMore(5);
    const query = { from: '2026-09-15T00:00:00Z', to: '2026-09-16T00:00:00Z', source };
    const minute = await stack.http
      .get('/v1/stats')
      .query({ ...query, bucket: 'minute' })
      .expect(200)
      .expect('content-type', 'application/json; charset=utf-8');
    // The whole body: the stats answer is written as text, past the validator's response check.
    assert.deepEqual(minute.body, {
      bucket: 'minute',
      from: query.from,
      to: query.to,
      buckets: [
        { start: '2026-09-15T09:00:00.000000Z', type: 'order.created', count: 2 },
        { start: '2026-09-15T09:59:00.000000Z', type: 'order.created', count: 1 },
        { start: '2026-09-15T10:01:00.000000Z', type: 'order.created', count: 1 },
        { start: '2026-09-15T10:01:00.000000Z', type: 'order.paid', count: 1 },
      ],
    });
    const hour = await stack.http
      .get('/v1/stats')
      .query({ ...query, bucket: 'hour' })
      .expect(200);
    assert.deepEqual(hour.body.buckets, [
      { start: '2026-09-15T09:00:00.000000Z', type: 'order.created', count: 3 },
      { start: '2026-09-15T10:00:00.000000Z', type: 'order.created', count: 1 },
      { start: '2026-09-15T10:00:00.000000Z', type: 'order.paid', count: 1 },
    ]);
    const day = await stack.http
      .get('/v1/stats')
      .query({ ...query, bucket: 'day', type: 'order.created' })
      .expect(200);
    assert.deepEqual(day.body.buckets, [
      { start: '2026-09-15T00:00:00.000000Z', type: 'order.created', count: 4 },
    ]);
    for (const b of day.body.buckets) assert.equal(typeof b.count, 'number');
  });
});
