import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import supertest from 'supertest';
import { createApp } from '../../api/app.ts';
import { loadOpenApiDocument } from '../../api/openapi.ts';
import { createSnsPublisher } from '../../api/sns-publisher.ts';
import { createSnsClient } from '../../platform/aws.ts';
import { createMetrics } from '../../platform/metrics.ts';
import { orderEvent, type Stack, startStack, testLog } from '../support/stack.ts';

const problemType = /^application\/problem\+json/;

describe('API errors', () => {
  let stack: Stack;
  before(async () => {
    // No consumer: whatever reaches the queue stays there to be counted.
    stack = await startStack({ consumer: false });
  });
  after(() => stack.close());

  const invalid: [string, string, unknown][] = [
    ['missing required attributes', 'application/cloudevents+json', { specversion: '1.0', id: 'a' }],
    ['wrong specversion', 'application/cloudevents+json', { ...orderEvent(), specversion: '0.3' }],
    ['empty id', 'application/json', { ...orderEvent(), id: '' }],
    ['bad time', 'application/json', { ...orderEvent(), time: 'yesterday' }],
    ['unknown upper-case attribute', 'application/json', { ...orderEvent(), Data: 1 }],
    ['object extension', 'application/json', { ...orderEvent(), ext: { a: 1 } }],
    ['an array sent as a single event', 'application/cloudevents+json', [orderEvent()]],
    ['a batch of 101', 'application/cloudevents-batch+json', Array.from({ length: 101 }, () => orderEvent())],
    [
      'a batch with one bad event',
      'application/cloudevents-batch+json',
      [orderEvent(), { ...orderEvent(), type: '' }],
    ],
  ];
  for (const [name, contentType, body] of invalid) {
    test(`when the body is ${name}, then 400 problem+json with errors[] and nothing is published`, async () => {
      const res = await stack.http
        .post('/v1/events')
        .set('content-type', contentType)
        .send(JSON.stringify(body))
        .expect(400);
      assert.match(res.headers['content-type'] ?? '', problemType);
      assert.equal(res.body.status, 400);
      assert.equal(res.body.code, 'INVALID_REQUEST');
      assert.ok(
        Array.isArray(res.body.errors) && res.body.errors.length > 0,
        'validator errors are included',
      );
      assert.deepEqual(await stack.queueDepth('main'), { visible: 0, inFlight: 0 });
    });
  }

  test('when the batch is empty, then 202 with nothing accepted and nothing published (HTTP binding §3.3.2)', async () => {
    const res = await stack.http
      .post('/v1/events')
      .set('content-type', 'application/cloudevents-batch+json')
      .send('[]')
      .expect(202);
    assert.deepEqual(res.body, { accepted: [] });
    assert.deepEqual(await stack.queueDepth('main'), { visible: 0, inFlight: 0 });
  });

  test('when the JSON is malformed, then 400 MALFORMED_JSON', async () => {
    const res = await stack.http
      .post('/v1/events')
      .set('content-type', 'application/json')
      .send('{"specversion":')
      .expect(400);
    assert.equal(res.body.code, 'MALFORMED_JSON');
  });

  test('when one event is over 200 KiB, then 413 EVENT_TOO_LARGE and nothing is published', async () => {
    const big = orderEvent({ data: 'x'.repeat(205 * 1024) });
    const res = await stack.http
      .post('/v1/events')
      .set('content-type', 'application/cloudevents+json')
      .send(JSON.stringify(big))
      .expect(413);
    assert.equal(res.body.code, 'EVENT_TOO_LARGE');
    const batch = [orderEvent(), orderEvent({ data: 'x'.repeat(205 * 1024) })];
    const res2 = await stack.http
      .post('/v1/events')
      .set('content-type', 'application/cloudevents-batch+json')
      .send(JSON.stringify(batch))
      .expect(413);
    assert.equal(res2.body.code, 'EVENT_TOO_LARGE');
    assert.equal(res2.body.errors[0].path, '/body/1');
    assert.deepEqual(await stack.queueDepth('main'), { visible: 0, inFlight: 0 });
  });

  test('when the content type is not JSON, then 415 problem+json', async () => {
    const res = await stack.http
      .post('/v1/events')
      .set('content-type', 'text/plain')
      .send('hello')
      .expect(415);
    assert.match(res.headers['content-type'] ?? '', problemType);
    assert.equal(res.body.code, 'UNSUPPORTED_MEDIA_TYPE');
  });

  test('when an event does not exist, then 404 problem+json', async () => {
    const res = await stack.http.get('/v1/events/%2Fnowhere/none').expect(404);
    assert.equal(res.body.code, 'NOT_FOUND');
    assert.match(res.headers['content-type'] ?? '', problemType);
  });

  test('when a query is out of bounds, then 400 with the offending parameter', async () => {
    for (const query of [{ limit: 0 }, { limit: 1001 }, { from: 'not-a-date' }, { cursor: 'AAAA' }]) {
      const res = await stack.http.get('/v1/events').query(query).expect(400);
      assert.equal(res.body.code, 'INVALID_REQUEST');
      assert.ok(res.body.errors.length > 0);
    }
    const stats = await stack.http
      .get('/v1/stats')
      .query({ from: '2026-01-01T00:00:00Z', to: '2027-01-01T00:00:00Z', bucket: 'minute' })
      .expect(400);
    assert.match(stats.body.detail, /buckets/);
    await stack.http
      .get('/v1/stats')
      .query({ from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z', bucket: 'day' })
      .expect(400);
    await stack.http
      .get('/v1/stats')
      .query({ from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z', bucket: 'week' })
      .expect(400);
  });

  test('when a route does not exist, then 404 problem+json', async () => {
    const res = await stack.http.get('/v2/nothing').expect(404);
    assert.match(res.headers['content-type'] ?? '', problemType);
  });

  test('when SNS refuses the publish, then 503 with Retry-After and never 202', async () => {
    const metrics = createMetrics(new Registry(), 'api');
    const sns = createSnsClient(stack.config.aws);
    const app = createApp({
      log: testLog,
      metrics,
      repository: stack.repository,
      publisher: createSnsPublisher({ sns, topicArn: `${stack.config.api.topicArn}-missing`, log: testLog }),
      openApiDocument: loadOpenApiDocument(),
      validateResponses: true,
    });
    try {
      const res = await supertest(app)
        .post('/v1/events')
        .set('content-type', 'application/cloudevents+json')
        .send(JSON.stringify(orderEvent()))
        .expect(503);
      assert.equal(res.body.code, 'DEPENDENCY_UNAVAILABLE');
      assert.ok(Number(res.headers['retry-after']) >= 1);
      const failed = (await metrics.eventsPublished.get()).values.find((v) => v.labels.outcome === 'failed');
      assert.equal(failed?.value, 1);
    } finally {
      sns.destroy();
    }
  });

  test('GET /openapi.json serves the spec', async () => {
    const res = await stack.http.get('/openapi.json').expect(200);
    assert.equal(res.body.openapi, '3.1.0');
    assert.ok(res.body.paths['/v1/events']);
  });
});
