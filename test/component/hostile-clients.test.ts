import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import supertest from 'supertest';
import { createApp } from '../../api/app.ts';
import { type Authenticator, createJwtAuthenticator } from '../../api/auth.ts';
import { createHttpServer, type HttpServerLimits } from '../../api/http-server.ts';
import { loadOpenApiDocument } from '../../api/openapi.ts';
import { EventRepository } from '../../db/event-repository.ts';
import { countPartitions, createPartitions } from '../../db/partitions.ts';
import { timeWindow } from '../../ingest/time-window.ts';
import { addMonths, monthStart } from '../../ingest/timestamp.ts';
import type { AuthConfig } from '../../platform/config.ts';
import { createMetrics } from '../../platform/metrics.ts';
import { type FlakyJwks, type JwksMode, startFlakyJwks } from '../support/flaky-jwks.ts';
import { trickle } from '../support/slow-client.ts';
import { orderEvent, type Stack, startStack, testLog } from '../support/stack.ts';
import { startTokenIssuer, type TokenIssuer } from '../support/token-issuer.ts';

/**
 * The attack suite: what one hostile or unlucky client can do to every other one. Each test adds
 * to the tally reported at the end: requests made, 5xx answered (none may be), JWKS fetches and
 * partitions of the store.
 */
const tally = { requests: 0, serverErrors: 0, issuerUnavailable: 0, jwksFetches: 0, partitions: 0 };
const counted = (status: number, { issuerDown = false } = {}) => {
  tally.requests++;
  if (status >= 500) {
    if (issuerDown && status === 503) tally.issuerUnavailable++;
    else tally.serverErrors++;
  }
  return status;
};

describe('hostile clients', () => {
  let issuer: TokenIssuer;
  let stack: Stack;
  const servers: Server[] = [];

  const authConfig = (jwksUrl: string): AuthConfig => ({
    jwksUrl,
    issuer: issuer.issuer,
    audience: issuer.audience,
    algorithms: ['RS256'],
    clockToleranceSec: 5,
    jwksMaxStaleSec: 3600,
  });

  /** The stack's app behind the production HTTP server, with the given limits. */
  const listen = async (limits: HttpServerLimits) => {
    const server = createHttpServer(stack.app, limits).listen(0, '127.0.0.1');
    servers.push(server);
    await once(server, 'listening');
    return (server.address() as AddressInfo).port;
  };

  before(async () => {
    issuer = await startTokenIssuer();
    stack = await startStack({
      // The default window: 24 months back, 1 ahead.
      env: { EVENT_TIME_PAST_MONTHS: '24', EVENT_TIME_MONTHS_AHEAD: '1' },
      security: {
        authenticate: createJwtAuthenticator(authConfig(issuer.jwksUrl)),
        failedAuthPerMinute: 1_000,
      },
    });
  });
  after(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
    await stack.close();
    await issuer.stop();
  });

  describe('slow bodies', () => {
    test('when a body trickles in below the minimum rate, then it is cut off with 408 within the configured time', async () => {
      const limits = {
        requestTimeoutMs: 3_000,
        headersTimeoutMs: 2_000,
        minBodyBytesPerSec: 100,
        bodyRateWindowMs: 500,
      };
      const port = await listen(limits);
      const token = await issuer.sign({ scope: 'events:write' });
      const started = performance.now();
      const slow = await trickle({
        port,
        headers: { authorization: `Bearer ${token}` },
        bytesPerTick: 1,
        tickMs: 100,
      });
      await slow.closed;
      assert.ok(performance.now() - started < limits.requestTimeoutMs, 'cut off before the request timeout');
      assert.equal(counted(slow.status() ?? 0), 408);
      assert.match(slow.received(), /REQUEST_TIMEOUT/);
    });

    test('when a body arrives fast enough but never ends, then the request timeout cuts it off', async () => {
      const limits = {
        requestTimeoutMs: 2_000,
        headersTimeoutMs: 2_000,
        minBodyBytesPerSec: 10,
        bodyRateWindowMs: 1_000,
      };
      const port = await listen(limits);
      const token = await issuer.sign({ scope: 'events:write' });
      const started = performance.now();
      const slow = await trickle({
        port,
        headers: { authorization: `Bearer ${token}` },
        bytesPerTick: 5,
        tickMs: 100,
      });
      await slow.closed;
      // Node checks its timeouts once a second.
      assert.ok(
        performance.now() - started < limits.requestTimeoutMs + 2_000,
        'cut off at the request timeout',
      );
      assert.equal(counted(slow.status() ?? 0), 408);
    });

    test('when 300 sockets trickle bodies, then every other client keeps being served', async () => {
      // Slow enough to hold their sockets for the whole test, fast enough to pass the rate check.
      const port = await listen({
        requestTimeoutMs: 120_000,
        headersTimeoutMs: 20_000,
        minBodyBytesPerSec: 1,
        bodyRateWindowMs: 10_000,
      });
      const trickler = await issuer.sign({ scope: 'events:read events:write', claims: { sub: 'trickler' } });
      const victim = await issuer.sign({ scope: 'events:read events:write', claims: { sub: 'victim' } });
      const slow = await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          trickle({
            port,
            method: i % 2 === 0 ? 'GET' : 'POST',
            headers: { authorization: `Bearer ${trickler}` },
            tickMs: 1_000,
          }),
        ),
      );
      try {
        const base = `http://127.0.0.1:${port}`;
        const statuses: number[] = [];
        for (let i = 0; i < 40; i++) {
          const res =
            i % 4 === 0
              ? await fetch(`${base}/v1/events`, {
                  method: 'POST',
                  headers: {
                    'content-type': 'application/cloudevents+json',
                    authorization: `Bearer ${victim}`,
                  },
                  body: JSON.stringify(orderEvent({ source: '/hostile/victim' })),
                })
              : await fetch(`${base}/v1/events?limit=1`, { headers: { authorization: `Bearer ${victim}` } });
          await res.arrayBuffer();
          statuses.push(counted(res.status));
        }
        assert.deepEqual(
          statuses.filter((s) => s >= 300),
          [],
          'every victim request succeeds',
        );
        assert.equal(
          slow.filter((s) => s.socket.destroyed).length,
          0,
          'the trickling sockets are still open',
        );
      } finally {
        for (const s of slow) s.stop();
      }
      await stack.handledMore(10);
    });

    test('when a trickling body is refused for its token, then the socket is closed after the 401', async () => {
      const port = await listen({
        requestTimeoutMs: 60_000,
        headersTimeoutMs: 20_000,
        minBodyBytesPerSec: 1,
        bodyRateWindowMs: 10_000,
      });
      const slow = await trickle({
        port,
        headers: { authorization: 'Bearer forged.token.here' },
        tickMs: 200,
      });
      await slow.closed;
      assert.equal(counted(slow.status() ?? 0), 401);
      assert.match(slow.received(), /connection: close/i);
      // A refusal without a body to wait for keeps the connection.
      const bodyless = await fetch(`http://127.0.0.1:${port}/v1/events`, {
        headers: { authorization: 'Bearer forged.token.here' },
      });
      await bodyless.arrayBuffer();
      assert.equal(counted(bodyless.status), 401);
      assert.notEqual(bodyless.headers.get('connection'), 'close');
    });
  });

  describe('issuer outages', () => {
    let jwks: FlakyJwks;
    let clock = 0;
    let authenticate: Authenticator;
    const keyOptions = {
      now: () => clock,
      maxAgeMs: 600_000,
      maxStaleMs: 3_600_000,
      minBackoffMs: 1_000,
      maxBackoffMs: 8_000,
      fetchTimeoutMs: 300,
    };
    const fresh = () => {
      authenticate = createJwtAuthenticator(authConfig(jwks.url), { keys: keyOptions });
      jwks.requests = 0;
    };
    const verifyMany = async (count: number) => {
      const token = await issuer.sign();
      const outcomes: (number | 'ok')[] = [];
      for (let i = 0; i < count; i++) {
        outcomes.push(
          await authenticate(token).then(
            () => 'ok' as const,
            (err: { status?: number; retryAfterSec?: number }) => {
              if (err.status === 503) assert.ok((err.retryAfterSec ?? 0) >= 1, 'a 503 says when to retry');
              return err.status ?? 0;
            },
          ),
        );
      }
      for (const o of outcomes) counted(o === 'ok' ? 200 : o, { issuerDown: true });
      return outcomes;
    };

    before(async () => {
      jwks = await startFlakyJwks(issuer.publicJwk);
    });
    after(async () => {
      await jwks.stop();
    });

    for (const mode of ['refuse', 'error500', 'badJson', 'hang'] satisfies JwksMode[]) {
      test(`when the issuer fails (${mode}) at start, then valid tokens get 503, one fetch per cooldown, and recovery ends it`, async () => {
        clock = 1_000_000;
        jwks.mode = mode;
        fresh();
        const outcomes = await verifyMany(20);
        assert.deepEqual(new Set(outcomes), new Set([503]), 'never a 401 for a valid token');
        assert.equal(jwks.requests, 1, '20 requests, one fetch');
        clock += 1_000; // the first cooldown has passed
        await verifyMany(5);
        assert.equal(jwks.requests, 2, 'one more fetch after the cooldown');
        clock += 1_000; // the second cooldown is twice as long
        await verifyMany(5);
        assert.equal(jwks.requests, 2, 'the cooldown backs off');
        jwks.mode = 'ok';
        clock += 10_000;
        assert.deepEqual(new Set(await verifyMany(5)), new Set(['ok']));
        assert.equal(jwks.requests, 3);
        tally.jwksFetches += jwks.requests;
      });
    }

    test('when the issuer fails after keys were fetched, then the keys serve stale for the configured time, then 503', async () => {
      clock = 5_000_000;
      jwks.mode = 'ok';
      let stale = false;
      authenticate = createJwtAuthenticator(authConfig(jwks.url), {
        keys: { ...keyOptions, onStale: (value) => (stale = value) },
      });
      jwks.requests = 0;
      assert.deepEqual(await verifyMany(3), ['ok', 'ok', 'ok']);
      jwks.mode = 'error500';
      clock += keyOptions.maxAgeMs + 1; // the keys are due for a refresh
      assert.deepEqual(
        new Set(await verifyMany(10)),
        new Set(['ok']),
        'served stale while the issuer is down',
      );
      assert.equal(stale, true, 'stale keys are reported');
      assert.equal(jwks.requests, 2, 'one background refresh, then a cooldown');
      clock += keyOptions.maxStaleMs; // past the bound
      assert.deepEqual(new Set(await verifyMany(5)), new Set([503]));
      jwks.mode = 'ok';
      clock += keyOptions.maxBackoffMs;
      assert.deepEqual(new Set(await verifyMany(3)), new Set(['ok']));
      assert.equal(stale, false, 'fresh keys end the stale state');
      tally.jwksFetches += jwks.requests;
    });

    test('when the issuer is down, then the API answers 503 DEPENDENCY_UNAVAILABLE with Retry-After', async () => {
      jwks.mode = 'error500';
      const app = createApp({
        log: testLog,
        metrics: createMetrics(new Registry(), 'api'),
        repository: stack.repository,
        publisher: { destination: 'test', publish: async () => {} },
        openApiDocument: loadOpenApiDocument(),
        security: { authenticate: createJwtAuthenticator(authConfig(jwks.url)) },
      });
      const res = await supertest(app)
        .get('/v1/events')
        .set('authorization', `Bearer ${await issuer.sign()}`);
      assert.equal(counted(res.status, { issuerDown: true }), 503);
      assert.equal(res.body.code, 'DEPENDENCY_UNAVAILABLE');
      assert.ok(Number(res.headers['retry-after']) >= 1);
    });
  });

  describe('forged and odd tokens', () => {
    test('when one address fails authentication again and again, then it gets 429 before its tokens are verified', async () => {
      const app = createApp({
        log: testLog,
        metrics: createMetrics(new Registry(), 'api'),
        repository: stack.repository,
        publisher: { destination: 'test', publish: async () => {} },
        openApiDocument: loadOpenApiDocument(),
        security: {
          authenticate: createJwtAuthenticator(authConfig(issuer.jwksUrl)),
          failedAuthPerMinute: 20,
        },
      });
      const statuses: number[] = [];
      for (let i = 0; i < 30; i++) {
        const res = await supertest(app).get('/v1/events').set('authorization', `Bearer forged.${i}.token`);
        statuses.push(counted(res.status));
      }
      assert.deepEqual(statuses.slice(0, 20), Array(20).fill(401));
      assert.deepEqual(statuses.slice(20), Array(10).fill(429));

      // Valid tokens from one address, many at once, never count against it.
      const busy = createApp({
        log: testLog,
        metrics: createMetrics(new Registry(), 'api'),
        repository: stack.repository,
        publisher: { destination: 'test', publish: async () => {} },
        openApiDocument: loadOpenApiDocument(),
        security: {
          authenticate: createJwtAuthenticator(authConfig(issuer.jwksUrl)),
          failedAuthPerMinute: 20,
        },
      });
      const token = await issuer.sign({ scope: 'events:read' });
      const parallel = await Promise.all(
        Array.from({ length: 60 }, () =>
          supertest(busy).get('/v1/events?limit=1').set('authorization', `Bearer ${token}`),
        ),
      );
      assert.deepEqual(new Set(parallel.map((res) => counted(res.status))), new Set([200]));
    });

    test('when the sub claim is not a string, then 401', async () => {
      for (const sub of [42, { id: 'x' }, ['a'], true, '']) {
        const token = await issuer.sign({ claims: { sub } });
        const res = await stack.http.get('/v1/events').set('authorization', `Bearer ${token}`);
        assert.equal(counted(res.status), 401, JSON.stringify(sub));
        assert.match(res.body.detail, /sub/);
      }
    });
  });

  describe('hostile events', () => {
    const post = async (body: string, type = 'application/cloudevents+json') => {
      const res = await stack.http
        .post('/v1/events')
        .set('content-type', type)
        .set('authorization', `Bearer ${await issuer.sign({ scope: 'events:write' })}`)
        .send(body);
      counted(res.status);
      return res;
    };

    test('when a top-level key is __proto__, constructor or prototype, then 400 naming it', async () => {
      for (const name of ['__proto__', 'constructor', 'prototype']) {
        const text = JSON.stringify(orderEvent()).replace(/^\{/, `{"${name}":{"x":1},`);
        const res = await post(text);
        assert.equal(res.status, 400, name);
        assert.ok(
          (res.body.errors as { path: string }[]).some((e) => e.path === `/body/${name}`),
          `${name} is named`,
        );
      }
    });

    test('when data nests or spreads beyond the limits, then 400 before any recursive work', async () => {
      const deep = JSON.stringify(orderEvent({ data: null })).replace(
        'null',
        `${'['.repeat(50_000)}${']'.repeat(50_000)}`,
      );
      const wide = JSON.stringify(orderEvent({ data: Array(10_001).fill(0) }));
      for (const [name, text, type] of [
        ['deep', deep, 'application/cloudevents+json'],
        ['wide', wide, 'application/cloudevents+json'],
        ['deep in a batch', `[${deep}]`, 'application/cloudevents-batch+json'],
      ] as const) {
        const res = await post(text, type);
        assert.ok([400, 413].includes(res.status), `${name}: ${res.status}`);
      }
      const moderate = await post(
        JSON.stringify(orderEvent({ data: Array(9_000).fill(0), source: '/hostile/wide' })),
      );
      assert.equal(moderate.status, 202, 'within the limits is accepted');
      await stack.handledMore(1);
    });

    test('when events are spread over 5,000 months, then each gets a clear answer, partitions stay bounded and a filtered GET locks as much as before', async () => {
      const policy = stack.config.eventTime;
      const window = timeWindow(policy, Date.now());
      // Every month the window (and the consumer's grace) can reach exists, as maintenance would make it.
      const months: Date[] = [];
      for (let m = monthStart(new Date(window.fromMs)); m.getTime() < window.toMs; m = addMonths(m, 1))
        months.push(m);
      await createPartitions(stack.db, [
        addMonths(months[0] as Date, -1),
        ...months,
        addMonths(months.at(-1) as Date, 1),
      ]);
      const bound = await countPartitions(stack.db);
      const locksOfFilteredGet = () =>
        stack.db.transaction(async (trx) => {
          await new EventRepository(trx).list({ type: 'order.created', subject: 'user-42' }, 100);
          const { rows } = await trx.raw<{ rows: { count: number }[] }>(
            'select count(*)::int as count from pg_locks where pid = pg_backend_pid()',
          );
          return rows[0]?.count ?? 0;
        });
      const locksBefore = await locksOfFilteredGet();

      const source = `/hostile/months/${crypto.randomUUID()}`;
      const first = addMonths(monthStart(new Date()), -2_500);
      const events = Array.from({ length: 5_000 }, (_, i) => {
        const month = addMonths(first, i);
        return orderEvent({
          source,
          id: `m${i}`,
          time: new Date(month.getTime() + 86_400_000).toISOString(),
        });
      });
      const inWindow = (e: { time?: unknown }) => {
        const t = Date.parse(String(e.time));
        return t >= window.fromMs && t < window.toMs;
      };
      const accepted: typeof events = [];
      let named = 0;
      for (let i = 0; i < events.length; i += 100) {
        const batch = events.slice(i, i + 100);
        const res = await post(JSON.stringify(batch), 'application/cloudevents-batch+json');
        if (res.status === 202) {
          accepted.push(...batch);
          continue;
        }
        assert.equal(res.status, 400);
        const errors = res.body.errors as { path: string; message: string }[];
        for (const [j, event] of batch.entries()) {
          const error = errors.find((e) => e.path === `/body/${j}/time`);
          if (inWindow(event)) assert.equal(error, undefined, 'an event inside the window is not refused');
          else {
            assert.match(error?.message ?? '', /must fall from .* up to \(not including\)/);
            named++;
          }
        }
        // The batch's events inside the window, sent again alone, are accepted.
        const good = batch.filter(inWindow);
        if (good.length > 0) {
          const again = await post(JSON.stringify(good), 'application/cloudevents-batch+json');
          assert.equal(again.status, 202);
          accepted.push(...good);
        }
      }
      assert.equal(accepted.length + named, 5_000, 'every event got a clear answer');
      assert.equal(accepted.length, months.length);
      await stack.handledMore(accepted.length);
      const page = await stack.http
        .get('/v1/events')
        .query({ source, limit: 1000 })
        .set('authorization', `Bearer ${await issuer.sign({ scope: 'events:read' })}`);
      assert.equal(counted(page.status), 200);
      assert.equal(page.body.items.length, accepted.length, 'every accepted event is stored');

      tally.partitions = await countPartitions(stack.db);
      assert.equal(tally.partitions, bound, 'no partition was made by client input');
      assert.equal(await locksOfFilteredGet(), locksBefore);
    });

    test('when a message outside the consumer window reaches the queue, then it goes to the DLQ alone, with its reason', async () => {
      const source = '/hostile/queue';
      await stack.sendRaw(JSON.stringify(orderEvent({ source, id: 'far', time: '2999-01-01T00:00:00Z' })));
      await stack.sendRaw(JSON.stringify(orderEvent({ source, id: 'near' })));
      await stack.handledMore(2);
      const dead = await stack.drain('dlq');
      assert.equal(dead.length, 1);
      assert.match(dead[0]?.Body ?? '', /"far"/);
      assert.match(dead[0]?.MessageAttributes?.ingesta_rejection_reason?.StringValue ?? '', /time/);
    });
  });

  test('when the attacks are over, then the tally is reported and no attack got a 5xx', (t) => {
    t.diagnostic(
      `attack suite: ${tally.requests} requests, ${tally.serverErrors} 5xx, ` +
        `${tally.issuerUnavailable} 503 while the issuer was down, ${tally.jwksFetches} JWKS fetches, ` +
        `${tally.partitions} partitions`,
    );
    assert.ok(tally.requests > 0);
    assert.equal(tally.serverErrors, 0, 'no attack gets a 5xx');
  });
});
