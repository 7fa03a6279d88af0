import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { maxBatchBodyBytes } from '../../api/app.ts';
import { orderEvent, type Stack, startStack } from '../support/stack.ts';

/** The 4xx answers a newcomer meets first, each saying what to change. */
describe('error messages', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ consumer: false });
  });
  after(() => stack.close());

  const accepted = 'application/cloudevents+json, application/json, application/cloudevents-batch+json';

  test('when a POST has no content type, then 415 lists the accepted content types', async () => {
    const res = await stack.http.post('/v1/events').expect(415);
    assert.equal(res.body.code, 'UNSUPPORTED_MEDIA_TYPE');
    assert.equal(
      res.body.detail,
      `the request has no content-type header; send one of: ${accepted}; or any content type with the attributes in ce-* headers (binary mode)`,
    );
    assert.equal(res.headers['accept-post'], `${accepted}, */*`);
  });

  test('when curl -d sends a form content type, then 415 says so and lists the accepted ones', async () => {
    const res = await stack.http
      .post('/v1/events')
      .set('content-type', 'application/x-www-form-urlencoded')
      .send(JSON.stringify(orderEvent()))
      .expect(415);
    assert.match(res.body.detail, /"application\/x-www-form-urlencoded" is not accepted \(curl -d sends it/);
    assert.match(
      res.body.detail,
      new RegExp(
        `send one of: ${accepted.replaceAll('+', '\\+')}; or any content type with the attributes in ce-\\* headers \\(binary mode\\)$`,
      ),
    );
  });

  test('when specversion is not 1.0, then the message says it must be "1.0"', async () => {
    for (const [contentType, body, path] of [
      ['application/json', { ...orderEvent(), specversion: '0.3' }, '/body/specversion'],
      [
        'application/cloudevents-batch+json',
        [{ ...orderEvent(), specversion: '0.3' }],
        '/body/0/specversion',
      ],
    ] as const) {
      const res = await stack.http
        .post('/v1/events')
        .set('content-type', contentType)
        .send(JSON.stringify(body));
      assert.equal(res.status, 400);
      assert.deepEqual(
        res.body.errors.map((e: { path: string; message: string }) => [e.path, e.message]),
        [[path, 'must be "1.0", the CloudEvents version ingesta accepts']],
      );
    }
  });

  test('when the body is empty or {}, then one message says what an event needs', async () => {
    for (const body of [undefined, '{}']) {
      const request = stack.http.post('/v1/events').set('content-type', 'application/cloudevents+json');
      const res = await (body === undefined ? request : request.send(body));
      assert.equal(res.status, 400);
      assert.equal(res.body.errors.length, 1, JSON.stringify(res.body));
      assert.match(
        res.body.detail,
        /^request\/body is empty: send a CloudEvent as JSON with at least specversion "1\.0", id, source and type$/,
      );
    }
  });

  test('when a batch body is over the limit, then 413 BATCH_TOO_LARGE states the limit in bytes', async () => {
    const body = `[${' '.repeat(maxBatchBodyBytes)}]`;
    const res = await stack.http
      .post('/v1/events')
      .set('content-type', 'application/cloudevents-batch+json')
      .send(body)
      .expect(413);
    assert.equal(res.body.code, 'BATCH_TOO_LARGE');
    assert.match(res.body.detail, new RegExp(`over ${maxBatchBodyBytes} bytes \\(5 MiB\\)`));
  });

  test('when a query parameter is given twice, then the message says to give it once', async () => {
    const res = await stack.http.get('/v1/events?limit=1&limit=2').expect(400);
    assert.deepEqual(res.body.errors[0].message, 'is given 2 times: give "limit" once');
  });

  test('when a query time has an unencoded "+", then the message says to percent-encode it', async () => {
    const res = await stack.http.get('/v1/events?from=2026-12-08T00:00:00+01:00').expect(400);
    assert.match(res.body.errors[0].message, /has a space where the URL had "\+".*percent-encode it as %2B/);
    const encoded = await stack.http.get('/v1/events?from=2026-12-08T00:00:00%2B01:00');
    assert.equal(encoded.status, 200, 'percent-encoded, the same time is accepted');
  });

  test('when a method is not allowed, then 405 METHOD_NOT_ALLOWED', async () => {
    const res = await stack.http.put('/v1/events').expect(405);
    assert.equal(res.body.code, 'METHOD_NOT_ALLOWED');
  });
});
