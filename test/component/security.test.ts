import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import helmet from 'helmet';
import { base64url } from 'jose';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import supertest from 'supertest';
import { createApp } from '../../api/app.ts';
import { createJwtAuthenticator } from '../../api/auth.ts';
import { loadOpenApiDocument } from '../../api/openapi.ts';
import type { EventPublisher } from '../../api/sns-publisher.ts';
import { createMetrics } from '../../platform/metrics.ts';
import { orderEvent, type Stack, startStack } from '../support/stack.ts';
import { startTokenIssuer, type TokenIssuer } from '../support/token-issuer.ts';

const problemType = /^application\/problem\+json/;
const unsigned = (payload: Record<string, unknown>) =>
  `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${base64url.encode(JSON.stringify(payload))}.`;

describe('security', () => {
  let issuer: TokenIssuer;
  let stack: Stack;
  let release: () => void = () => {};
  let gate: Promise<void> | undefined;

  before(async () => {
    issuer = await startTokenIssuer();
    stack = await startStack({
      consumer: false,
      security: {
        authenticate: createJwtAuthenticator({
          jwksUrl: issuer.jwksUrl,
          issuer: issuer.issuer,
          audience: issuer.audience,
          algorithms: ['RS256', 'ES256'],
          clockToleranceSec: 5,
          jwksMaxStaleSec: 3600,
        }),
        rateLimitPerMinute: 40,
        maxInFlightRequests: 1,
      },
      // Lets a test hold one publish in flight to fill the server.
      wrapPublisher: (real): EventPublisher => ({
        destination: real.destination,
        publish: async (messages) => {
          await gate;
          return real.publish(messages);
        },
      }),
    });
  });
  after(async () => {
    await stack.close();
    await issuer.stop();
  });

  const post = (token?: string) => {
    const req = stack.http.post('/v1/events').set('content-type', 'application/cloudevents+json');
    if (token) req.set('authorization', `Bearer ${token}`);
    return req.send(JSON.stringify(orderEvent()));
  };

  test('when the token is valid and has events:write, then POST is accepted', async () => {
    await post(await issuer.sign({ scope: 'events:write' })).expect(202);
  });

  test('when a token is missing or bad, then 401 problem+json with WWW-Authenticate and nothing is published', async () => {
    const forged: [string, string][] = [
      ['no token', ''],
      ['garbage', 'not-a-jwt'],
      ['expired', await issuer.sign({ expiresInSec: -120 })],
      ['wrong audience', await issuer.sign({ claims: { aud: 'someone-else' } })],
      ['wrong issuer', await issuer.sign({ claims: { iss: 'https://evil.example/' } })],
      [
        'alg none',
        unsigned({ iss: issuer.issuer, aud: issuer.audience, sub: 'x', scope: 'events:write', exp: 9e9 }),
      ],
      ['signed by another key', await issuer.signWithForeignKey('events:write')],
      [
        'HS256 with the public key as secret',
        await (async () => {
          const { SignJWT } = await import('jose');
          const secret = new TextEncoder().encode(JSON.stringify(issuer.publicJwk));
          return new SignJWT({ scope: 'events:write' })
            .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
            .setIssuer(issuer.issuer)
            .setAudience(issuer.audience)
            .setSubject('x')
            .setExpirationTime('5m')
            .sign(secret);
        })(),
      ],
    ];
    for (const [name, token] of forged) {
      const res = await post(token || undefined);
      assert.equal(res.status, 401, name);
      assert.match(res.headers['content-type'] ?? '', problemType, name);
      assert.equal(res.body.code, 'UNAUTHENTICATED', name);
      assert.match(res.headers['www-authenticate'] ?? '', /^Bearer/, name);
    }
    const depth = await stack.queueDepth('main');
    assert.equal(depth.visible, 1, 'only the one valid POST of the previous test reached the topic');
  });

  test('when the token lacks the scope of the method, then 403 problem+json', async () => {
    const readOnly = await issuer.sign({ scope: 'events:read' });
    const res = await post(readOnly).expect(403);
    assert.equal(res.body.code, 'FORBIDDEN');
    assert.match(res.headers['www-authenticate'] ?? '', /insufficient_scope/);
    const writeOnly = await issuer.sign({ scope: 'events:write' });
    await stack.http.get('/v1/events').set('authorization', `Bearer ${writeOnly}`).expect(403);
    await stack.http.get('/v1/events').set('authorization', `Bearer ${readOnly}`).expect(200);
  });

  test('when the spec and docs are fetched, then no token is needed', async () => {
    await stack.http.get('/openapi.json').expect(200);
  });

  test('when responses are sent, then security headers are set and CORS is off', async () => {
    const res = await stack.http.get('/openapi.json').set('origin', 'https://elsewhere.example').expect(200);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.match(res.headers['content-security-policy'] ?? '', /default-src 'self'/);
    assert.equal(res.headers['access-control-allow-origin'], undefined);
    assert.equal(res.headers['x-powered-by'], undefined);
  });

  test('when responses are sent, then they carry exactly the headers helmet sets by default', async () => {
    const reference = express().disable('x-powered-by').use(helmet());
    reference.get('/', (_req, res) => {
      res.end();
    });
    const transport = new Set(['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding']);
    const expected = Object.entries((await supertest(reference).get('/')).headers).filter(
      ([name]) => !transport.has(name),
    );
    assert.ok(expected.length >= 10, 'helmet sets its headers on the reference app');
    for (const res of [
      await stack.http.get('/openapi.json').expect(200),
      await post().expect(401),
      await stack.http.get('/nowhere').expect(404),
    ]) {
      for (const [name, value] of expected) assert.equal(res.headers[name], value, name);
    }
  });

  test('when one request fills the server, then the next is shed with 503 and Retry-After', async () => {
    const token = await issuer.sign({ scope: 'events:write' });
    gate = new Promise((resolve) => (release = resolve));
    const held = post(token).then((r) => r);
    // The held request is inside the publisher once the shedder has counted it; a second one is refused.
    let shed: Awaited<ReturnType<typeof post>> | undefined;
    for (let attempt = 0; attempt < 100 && shed?.status !== 503; attempt++) shed = await post(token);
    release();
    gate = undefined;
    assert.equal(shed?.status, 503);
    assert.equal(shed?.body.code, 'OVERLOADED');
    assert.equal(shed?.headers['retry-after'], '1');
    assert.equal((await held).status, 202);
  });

  test('when a client gives up on a request in flight, then its slot is freed at once', async () => {
    const writer = await issuer.sign({ scope: 'events:write', claims: { sub: 'impatient' } });
    const reader = await issuer.sign({ scope: 'events:read', claims: { sub: 'prober' } });
    const probe = () => stack.http.get('/v1/events?limit=1').set('authorization', `Bearer ${reader}`);
    const server = createServer(stack.app).listen(0, '127.0.0.1');
    await once(server, 'listening');
    gate = new Promise((resolve) => (release = resolve));
    try {
      const abandoned = new AbortController();
      const held = fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/cloudevents+json', authorization: `Bearer ${writer}` },
        body: JSON.stringify(orderEvent()),
        signal: abandoned.signal,
      }).catch(() => undefined);
      let res: Awaited<ReturnType<typeof probe>> | undefined;
      for (let attempt = 0; attempt < 20 && res?.status !== 503; attempt++) res = await probe();
      assert.equal(res?.status, 503, 'the held request fills the server');
      abandoned.abort();
      await held;
      for (let attempt = 0; attempt < 20 && res?.status === 503; attempt++) res = await probe();
      assert.equal(res?.status, 200, 'its slot is free while its publish is still held');
    } finally {
      release();
      gate = undefined;
      server.close();
    }
  });

  test('when a principal exceeds its rate, then 429 problem+json while others are unaffected', async () => {
    const token = await issuer.sign({ scope: 'events:read', claims: { sub: 'greedy' } });
    let res: Awaited<ReturnType<typeof post>> | undefined;
    for (let i = 0; i < 41; i++)
      res = await stack.http.get('/v1/events?limit=1').set('authorization', `Bearer ${token}`);
    assert.equal(res?.status, 429);
    assert.equal(res?.body.code, 'RATE_LIMITED');
    assert.ok(Number(res?.headers['retry-after']) > 0);
    const other = await issuer.sign({ scope: 'events:read', claims: { sub: 'modest' } });
    await stack.http.get('/v1/events?limit=1').set('authorization', `Bearer ${other}`).expect(200);
  });

  test('when an authenticated POST is accepted, then its debug line carries the request id and the principal', async () => {
    for (const level of ['debug', 'info']) {
      const lines: Record<string, unknown>[] = [];
      const app = createApp({
        log: pino({ level }, { write: (line: string) => lines.push(JSON.parse(line)) }),
        metrics: createMetrics(new Registry(), 'api'),
        repository: stack.repository,
        publisher: { destination: 'test', publish: async () => {} },
        openApiDocument: loadOpenApiDocument(),
        security: {
          authenticate: async () => ({ subject: 'logged', scopes: new Set(['events:write']) }),
        },
      });
      await supertest(app)
        .post('/v1/events')
        .set('content-type', 'application/cloudevents+json')
        .set('authorization', 'Bearer any')
        .set('x-request-id', 'req-1')
        .send(JSON.stringify(orderEvent()))
        .expect(202);
      const accepted = lines.filter((l) => l.msg === 'events accepted');
      if (level === 'info') {
        assert.deepEqual(accepted, [], 'no line per request at the default level');
        continue;
      }
      assert.equal(accepted.length, 1);
      const { requestId, principal, eventCount, batch } = accepted[0] ?? {};
      assert.deepEqual(
        { requestId, principal, eventCount, batch },
        {
          requestId: 'req-1',
          principal: 'logged',
          eventCount: 1,
          batch: false,
        },
      );
    }
  });

  test('when a request fails with a bug, then 500 INTERNAL without details, and the error line carries the request id', async () => {
    const lines: Record<string, unknown>[] = [];
    const app = createApp({
      log: pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) }),
      metrics: createMetrics(new Registry(), 'api'),
      // Only `get` is reached by this request.
      repository: Object.assign(Object.create(stack.repository) as typeof stack.repository, {
        get: async () => {
          throw new TypeError('cannot read properties of undefined');
        },
      }),
      publisher: { destination: 'test', publish: async () => {} },
      openApiDocument: loadOpenApiDocument(),
    });
    const res = await supertest(app).get('/v1/events/%2Fshop/x').set('x-request-id', 'req-500').expect(500);
    assert.equal(res.body.code, 'INTERNAL');
    assert.doesNotMatch(JSON.stringify(res.body), /cannot read/);
    const [line] = lines.filter((l) => l.msg === 'unhandled error');
    assert.equal(line?.requestId, 'req-500');
    assert.match(String((line?.err as { message?: string })?.message), /cannot read/);
  });

  test('when the issuer keys cannot be fetched, then 503, not 401', async () => {
    const app = createJwtAuthenticator({
      jwksUrl: 'http://127.0.0.1:9/jwks.json',
      issuer: issuer.issuer,
      audience: issuer.audience,
      algorithms: ['RS256'],
      clockToleranceSec: 5,
      jwksMaxStaleSec: 3600,
    });
    await assert.rejects(app(await issuer.sign()), (err: { status?: number }) => err.status === 503);
  });
});
