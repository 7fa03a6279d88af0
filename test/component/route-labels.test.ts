import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { EventPublisher } from '../../api/sns-publisher.ts';
import { orderEvent, type Stack, startStack } from '../support/stack.ts';

/** The `route` label of every request-duration series with this status. */
async function routesOf(stack: Stack, status: string): Promise<string[]> {
  const metric = await stack.apiMetrics.httpDuration.get();
  return metric.values
    .filter((v) => v.metricName?.endsWith('_count') && String(v.labels.status_code) === status)
    .map((v) => String(v.labels.route));
}

describe('route labels of refused requests', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      consumer: false,
      security: { authenticate: async () => Promise.reject(new Error('no token')) },
    });
  });
  after(() => stack.close());

  test('when a request on a known route is refused before routing, then it keeps its route label; only unknown paths are unmatched', async () => {
    await stack.http.post('/v1/events').send('{}').expect(401);
    await stack.http.get('/v1/nowhere').expect(401);
    assert.deepEqual((await routesOf(stack, '401')).sort(), ['/v1/events', 'unmatched']);
  });
});

describe('route labels of shed and malformed requests', () => {
  let stack: Stack;
  let release: () => void = () => {};
  let gate: Promise<void> | undefined;
  before(async () => {
    stack = await startStack({
      consumer: false,
      security: { maxInFlightRequests: 1 },
      wrapPublisher: (real): EventPublisher => ({
        destination: real.destination,
        publish: async (messages) => {
          await gate;
          return real.publish(messages);
        },
      }),
    });
  });
  after(() => stack.close());

  test('when requests are shed, too large or not JSON, then they are labelled by their route', async () => {
    gate = new Promise((resolve) => {
      release = resolve;
    });
    const held = stack.http
      .post('/v1/events')
      .set('content-type', 'application/cloudevents+json')
      .send(JSON.stringify(orderEvent()))
      .then((r) => r);
    // The held request fills the server; the next one is shed.
    let shed = 0;
    while (shed === 0) {
      const res = await stack.http.get('/v1/events/%2Fshop%2Fweb/x');
      if (res.status === 503) shed++;
    }
    release();
    assert.equal((await held).status, 202);
    await stack.http
      .post('/v1/events')
      .set('content-type', 'application/cloudevents+json')
      .send('x'.repeat(300 * 1024))
      .expect(413);
    await stack.http
      .post('/v1/events')
      .set('content-type', 'application/cloudevents+json')
      .send('{"not json')
      .expect(400);
    assert.deepEqual(await routesOf(stack, '503'), ['/v1/events/:source/:id']);
    assert.deepEqual(await routesOf(stack, '413'), ['/v1/events']);
    assert.deepEqual(await routesOf(stack, '400'), ['/v1/events']);
  });
});
