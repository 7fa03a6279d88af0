import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { runSmokeTest, SmokeTestError, smokeOptionsFromEnv, smokeSource } from './smoke.ts';

/**
 * A stand-in for the authorization server and the API behind API Gateway, with knobs for the
 * ways a release goes wrong.
 */
interface FakeApi {
  /** Reads answered 404 before the stored event shows up (the consumer's lag). */
  readsBeforeStored: number;
  /** Status of POST /v1/events. */
  postStatus: number;
  /** When set, GET returns an event with this id instead of the one posted. */
  storedIdOverride?: string;
  acceptCredentials: boolean;
  posted: Record<string, unknown>[];
  reads: string[];
  authorizations: string[];
}

const clientId = 'smoke-client';
const clientSecret = 's3cret';
const accessToken = 'token-abc';

const api: FakeApi = {
  readsBeforeStored: 0,
  postStatus: 202,
  acceptCredentials: true,
  posted: [],
  reads: [],
  authorizations: [],
};

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method === 'POST' && url.pathname === '/oauth2/token') {
    const form = new URLSearchParams(await body(req));
    const expected = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`;
    if (!api.acceptCredentials || req.headers.authorization !== expected) {
      return json(res, 400, { error: 'invalid_client' });
    }
    assert.equal(form.get('grant_type'), 'client_credentials');
    return json(res, 200, { access_token: accessToken, token_type: 'Bearer', expires_in: 3600 });
  }
  api.authorizations.push(req.headers.authorization ?? '');
  if (req.method === 'POST' && url.pathname === '/prod/v1/events') {
    api.posted.push(JSON.parse(await body(req)) as Record<string, unknown>);
    if (api.postStatus !== 202) return json(res, api.postStatus, { code: 'PUBLISH_FAILED', title: 'no' });
    return json(res, 202, { accepted: 1 });
  }
  const read = /^\/prod\/v1\/events\/([^/]+)\/([^/]+)$/.exec(url.pathname);
  if (req.method === 'GET' && read?.[1] && read[2]) {
    const source = decodeURIComponent(read[1]);
    const id = decodeURIComponent(read[2]);
    api.reads.push(`${source} ${id}`);
    const event = api.posted.find((posted) => posted.source === source && posted.id === id);
    if (!event || api.reads.length <= api.readsBeforeStored)
      return json(res, 404, { code: 'EVENT_NOT_FOUND' });
    return json(res, 200, { ...event, id: api.storedIdOverride ?? event.id, time: new Date().toISOString() });
  }
  json(res, 404, { code: 'NOT_FOUND' });
});

let baseUrl = '';

before(async () => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.close();
});

beforeEach(() => {
  Object.assign(api, {
    readsBeforeStored: 0,
    postStatus: 202,
    storedIdOverride: undefined,
    acceptCredentials: true,
    posted: [],
    reads: [],
    authorizations: [],
  });
});

function options() {
  return {
    // API Gateway stage path, no trailing slash: the smoke test must keep the prefix.
    apiUrl: `${baseUrl}/prod`,
    tokenUrl: `${baseUrl}/oauth2/token`,
    clientId,
    clientSecret,
    revision: '0123456789abcdef0123',
    readTimeoutMs: 2_000,
    pollIntervalMs: 5,
  };
}

describe('smoke test', () => {
  test('when the event becomes readable after a few reads, then it passes and reports the same event', async () => {
    api.readsBeforeStored = 3;

    const result = await runSmokeTest(options());

    assert.equal(api.posted.length, 1);
    const [event] = api.posted;
    assert.deepEqual(
      { specversion: event?.specversion, source: event?.source, id: event?.id },
      { specversion: '1.0', source: smokeSource, id: result.id },
    );
    assert.deepEqual(event?.data, { revision: '0123456789abcdef0123' });
    assert.equal(api.reads.length, 4);
    assert.ok(api.authorizations.every((header) => header === `Bearer ${accessToken}`));
  });

  test('when the event is never stored, then it fails once the read timeout has passed', async () => {
    api.readsBeforeStored = Number.POSITIVE_INFINITY;

    await assert.rejects(runSmokeTest({ ...options(), readTimeoutMs: 50 }), (error: unknown) => {
      assert.ok(error instanceof SmokeTestError);
      assert.match(error.message, /not readable within 50 ms \(last status 404\)/);
      return true;
    });
    assert.ok(api.reads.length >= 2, 'it retried before giving up');
  });

  test('when the client credentials are rejected, then it fails before sending any event', async () => {
    api.acceptCredentials = false;

    await assert.rejects(runSmokeTest(options()), /token endpoint answered 400: invalid_client/);
    assert.equal(api.posted.length, 0);
  });

  test('when the API cannot publish the event, then it fails with the status and problem code', async () => {
    api.postStatus = 503;

    await assert.rejects(
      runSmokeTest(options()),
      /POST \/v1\/events answered 503, expected 202: PUBLISH_FAILED/,
    );
    assert.equal(api.reads.length, 0);
  });

  test('when the API returns another event than the one posted, then it fails', async () => {
    api.storedIdOverride = 'someone-else';

    await assert.rejects(runSmokeTest(options()), /GET returned id "someone-else"/);
  });

  test('when the API is unreachable, then it fails with a smoke test error', async () => {
    await assert.rejects(
      runSmokeTest({ ...options(), apiUrl: 'http://127.0.0.1:1', tokenUrl: 'http://127.0.0.1:1/token' }),
      SmokeTestError,
    );
  });
});

describe('smoke test options', () => {
  test('when required variables are missing, then the error names each of them', () => {
    assert.throws(
      () => smokeOptionsFromEnv({ INGESTA_API_URL: 'https://api.example.com' }),
      /missing environment variables: INGESTA_TOKEN_URL, INGESTA_CLIENT_ID, INGESTA_CLIENT_SECRET/,
    );
  });

  test('when every variable is set, then the options carry them and empty optional ones stay unset', () => {
    const parsed = smokeOptionsFromEnv({
      INGESTA_API_URL: 'https://api.example.com',
      INGESTA_TOKEN_URL: 'https://auth.example.com/oauth2/token',
      INGESTA_CLIENT_ID: 'id',
      INGESTA_CLIENT_SECRET: 'secret',
      INGESTA_TOKEN_SCOPE: '',
      INGESTA_SMOKE_REVISION: 'abc',
      INGESTA_SMOKE_READ_TIMEOUT_MS: '30000',
    });

    assert.deepEqual(parsed, {
      apiUrl: 'https://api.example.com',
      tokenUrl: 'https://auth.example.com/oauth2/token',
      clientId: 'id',
      clientSecret: 'secret',
      scope: undefined,
      revision: 'abc',
      readTimeoutMs: 30000,
    });
  });
});
