import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { orderEvent, type Stack, startStack } from '../support/stack.ts';

/** How many malformed requests the property sends. */
const runs = 10_000;

const contentTypes = [
  'application/cloudevents+json',
  'application/json',
  'application/cloudevents-batch+json',
  'text/plain',
  'application/xml',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=latin1',
];

/** A valid event broken in exactly one way, so it can never be accepted. */
const brokenEvent = fc
  .tuple(
    fc.constantFrom(
      'drop',
      'retype',
      'badKey',
      'specversion',
      'longId',
      'badTime',
      'nul',
      'unpairedSurrogate',
      'objectExtension',
    ),
    fc.constantFrom('specversion', 'id', 'source', 'type'),
    fc.oneof(
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.string()),
      fc.object(),
      fc.constant(''),
    ),
    fc.string(),
  )
  .map(([how, key, value, text]) => {
    const event: Record<string, unknown> = orderEvent();
    switch (how) {
      case 'drop':
        delete event[key];
        break;
      case 'retype':
        event[key] = value;
        break;
      case 'badKey':
        event[`X${text.replace(/[^A-Za-z]/g, '')}Y`] = value;
        break;
      case 'specversion':
        event.specversion = text === '1.0' ? '2.0' : text;
        break;
      case 'longId':
        event.id = 'x'.repeat(257) + text;
        break;
      case 'badTime':
        event.time = `not a time ${text}`;
        break;
      case 'nul':
        event.subject = `a\u0000${text}`;
        break;
      case 'unpairedSurrogate':
        event.type = `a\udc00${text}`;
        break;
      case 'objectExtension':
        event.ext = { nested: value };
        break;
    }
    return event;
  });

const postBody = fc.oneof(
  brokenEvent.map((e) => JSON.stringify(e)),
  fc
    .array(brokenEvent, { minLength: 1, maxLength: 5 })
    .map((list) => JSON.stringify([orderEvent(), ...list])),
  fc.array(fc.constant(orderEvent()), { minLength: 101, maxLength: 102 }).map((l) => JSON.stringify(l)),
  fc.string().map((s) => `{${s}`),
  fc
    .jsonValue()
    // An empty array is a valid (empty) batch; any other array is refused.
    .filter((v) => typeof v !== 'object' || v === null || (Array.isArray(v) && v.length > 0))
    .map((v) => JSON.stringify(v)),
  fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('latin1')),
);

const postRequest = fc.record({
  method: fc.constant('POST'),
  path: fc.constantFrom('/v1/events', '/v1/events/', '/v1/stats', '/v1/events/%2Fs/x'),
  contentType: fc.constantFrom(...contentTypes),
  body: postBody,
});

const junk = fc.oneof(
  fc.string(),
  fc.constantFrom('-1', '0', '1001', '1e9', 'NaN', '%zz', '2026-13-45T99:00:00Z', ''),
);
const badQuery = fc
  .tuple(
    fc.constantFrom('limit', 'from', 'to', 'cursor', 'bucket', 'unknown', 'type'),
    junk,
    fc.dictionary(fc.constantFrom('type', 'source', 'subject'), fc.string({ minLength: 1, maxLength: 20 })),
  )
  .map(([name, value, extra]) => {
    const params = new URLSearchParams(extra);
    // Each of these is made invalid on purpose: out of range, unparseable, unknown or NUL-bearing.
    if (name === 'limit')
      params.set('limit', /^\d+$/.test(value) && Number(value) <= 1000 && Number(value) >= 1 ? '0' : value);
    else if (name === 'cursor') params.set('cursor', `${value}!`);
    else if (name === 'type') params.set('type', `${value}\u0000`);
    else if (name === 'unknown') params.set(`u${value.length}`, value);
    else params.set(name, `x${value}`);
    return params.toString();
  });

const getRequest = fc.oneof(
  badQuery.map((q) => ({ method: 'GET', path: `/v1/events?${q}`, contentType: undefined, body: undefined })),
  badQuery.map((q) => ({ method: 'GET', path: `/v1/stats?${q}`, contentType: undefined, body: undefined })),
  fc.tuple(fc.string({ maxLength: 30 }), fc.string({ maxLength: 30 })).map(([a, b]) => ({
    method: 'GET',
    path: `/v1/events/${encodeURIComponent(a) || '%25'}/${encodeURIComponent(b) || '%'}`,
    contentType: undefined,
    body: undefined,
  })),
  fc
    .constantFrom('DELETE', 'PUT', 'PATCH')
    .map((method) => ({ method, path: '/v1/events', contentType: undefined, body: undefined })),
);

const headers = fc.record({
  'x-request-id': fc.string({ maxLength: 200 }).filter((s) => /^[\t\x20-\x7e]*$/.test(s)),
  accept: fc.constantFrom('*/*', 'application/xml', 'text/html', 'application/json;q=0'),
});

describe('fuzzing hostile input', () => {
  let stack: Stack;
  let server: Server;
  let base: string;

  before(async () => {
    stack = await startStack({ consumer: false, security: { rateLimitPerMinute: 1_000_000 } });
    server = createServer(stack.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => {
      server.close(resolve);
      server.closeAllConnections();
    });
    await stack.close();
  });

  test(`when ${runs} malformed requests arrive, then each gets a 4xx problem+json and nothing is published or stored`, async () => {
    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(fc.oneof(postRequest, getRequest), headers, async (request, extraHeaders) => {
        const res = await fetch(`${base}${request.path}`, {
          method: request.method,
          headers: {
            ...extraHeaders,
            ...(request.contentType ? { 'content-type': request.contentType } : {}),
          },
          ...(request.body !== undefined ? { body: request.body } : {}),
        });
        const text = await res.text();
        seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
        assert.ok(
          res.status >= 400 && res.status < 500,
          `${request.method} ${request.path} → ${res.status} ${text.slice(0, 300)}`,
        );
        assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
        const problem = JSON.parse(text) as { status: number; code: string };
        assert.equal(problem.status, res.status);
        assert.match(problem.code, /^[A-Z_]+$/);
        assert.doesNotMatch(text, /\bat [\w.]+ \(|node_modules/, 'no stack traces');
      }),
      { numRuns: runs },
    );
    assert.ok((seen.get(400) ?? 0) > runs / 4, `mostly validation errors: ${JSON.stringify([...seen])}`);
    // The process is up, and nothing got through.
    assert.equal((await fetch(`${base}/openapi.json`)).status, 200);
    assert.deepEqual(await stack.queueDepth('main'), { visible: 0, inFlight: 0 });
    const { rows } = await stack.db.raw('select count(*)::int as n from events');
    assert.equal(rows[0].n, 0);
  });
});
