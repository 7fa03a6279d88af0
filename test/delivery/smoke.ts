/**
 * Post-deploy smoke test through the public API, as a client sees it: obtains a token with an
 * OAuth 2.0 client-credentials grant, POSTs one CloudEvent and reads it back by (source, id)
 * until the consumer has stored it. Exits non-zero on any failure, which fails the deploy job
 * and triggers its rollback.
 *
 * Usage: `node test/delivery/smoke.ts` with
 *   INGESTA_API_URL         base URL of the API (API Gateway), e.g. https://api.example.com
 *   INGESTA_TOKEN_URL       token endpoint of the authorization server
 *   INGESTA_CLIENT_ID       client allowed the events:write and events:read scopes
 *   INGESTA_CLIENT_SECRET
 *   INGESTA_TOKEN_SCOPE     optional space-separated scopes to request
 *   INGESTA_SMOKE_REVISION  optional commit being checked, carried in the event
 *   INGESTA_SMOKE_READ_TIMEOUT_MS  optional, default 60000
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';

export interface SmokeOptions {
  apiUrl: string;
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  /** Space-separated scopes to request; the authorization server's default when absent. */
  scope?: string;
  /** Commit under test, recorded in the event's data. Default `unknown`. */
  revision?: string;
  /** How long the event may take to become readable. Default 60 000 ms (the freshness SLO is 5 s). */
  readTimeoutMs?: number;
  /** Pause between reads while the event is not stored yet. Default 1 000 ms. */
  pollIntervalMs?: number;
  /** Limit for each HTTP request. Default 10 000 ms. */
  requestTimeoutMs?: number;
  log?: (message: string) => void;
}

export interface SmokeResult {
  source: string;
  id: string;
  /** Time from the 202 to the first successful read. */
  readAfterMs: number;
}

export class SmokeTestError extends Error {
  override name = 'SmokeTestError';
}

/** The event source every smoke test uses, so its events are easy to find and ignore. */
export const smokeSource = '/ingesta/smoke';
export const smokeType = 'ingesta.smoke.checked';

export async function runSmokeTest(options: SmokeOptions): Promise<SmokeResult> {
  const log = options.log ?? (() => {});
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const revision = options.revision ?? 'unknown';

  const token = await fetchToken(options, requestTimeoutMs);
  log('token obtained');

  const event = {
    specversion: '1.0',
    id: `smoke-${revision.slice(0, 12)}-${randomUUID()}`,
    source: smokeSource,
    type: smokeType,
    subject: 'deploy',
    datacontenttype: 'application/json',
    data: { revision },
  };
  const eventsUrl = apiEndpoint(options.apiUrl, 'v1/events');
  const posted = await request(eventsUrl, requestTimeoutMs, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/cloudevents+json' },
    body: JSON.stringify(event),
  });
  if (posted.status !== 202) {
    throw new SmokeTestError(
      `POST /v1/events answered ${posted.status}, expected 202: ${await problem(posted)}`,
    );
  }
  const acceptedAt = Date.now();
  log(`event ${event.id} accepted`);

  const eventUrl = apiEndpoint(
    options.apiUrl,
    `v1/events/${encodeURIComponent(event.source)}/${encodeURIComponent(event.id)}`,
  );
  const deadline = acceptedAt + (options.readTimeoutMs ?? 60_000);
  let lastStatus = 0;
  for (;;) {
    const read = await request(eventUrl, requestTimeoutMs, { headers: { authorization: `Bearer ${token}` } });
    lastStatus = read.status;
    if (read.status === 200) {
      const stored = (await read.json()) as Record<string, unknown>;
      for (const field of ['id', 'source', 'type'] as const) {
        if (stored[field] !== event[field]) {
          throw new SmokeTestError(
            `GET returned ${field} ${JSON.stringify(stored[field])}, expected ${JSON.stringify(event[field])}`,
          );
        }
      }
      const readAfterMs = Date.now() - acceptedAt;
      log(`event ${event.id} read back after ${readAfterMs} ms`);
      return { source: event.source, id: event.id, readAfterMs };
    }
    // 404: not stored yet; 5xx: a passing fault worth another try. Anything else will not heal.
    if (read.status !== 404 && read.status < 500) {
      throw new SmokeTestError(`GET ${eventUrl.pathname} answered ${read.status}: ${await problem(read)}`);
    }
    await read.body?.cancel();
    if (Date.now() >= deadline) break;
    await delay(options.pollIntervalMs ?? 1_000);
  }
  throw new SmokeTestError(
    `event ${event.id} was not readable within ${options.readTimeoutMs ?? 60_000} ms (last status ${lastStatus})`,
  );
}

async function fetchToken(options: SmokeOptions, requestTimeoutMs: number): Promise<string> {
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (options.scope) form.set('scope', options.scope);
  const basic = Buffer.from(
    `${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`,
  ).toString('base64');
  const response = await request(new URL(options.tokenUrl), requestTimeoutMs, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
  });
  if (response.status !== 200) {
    throw new SmokeTestError(`token endpoint answered ${response.status}: ${await problem(response)}`);
  }
  const body = (await response.json()) as { access_token?: unknown };
  if (typeof body.access_token !== 'string' || body.access_token === '') {
    throw new SmokeTestError('token endpoint answered without an access_token');
  }
  return body.access_token;
}

/** Resolves a path below the API base URL, keeping any stage prefix such as `/prod`. */
function apiEndpoint(apiUrl: string, path: string): URL {
  return new URL(path, apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`);
}

async function request(url: URL, timeoutMs: number, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const reason = cause?.code ?? cause?.message ?? (error as Error).message;
    throw new SmokeTestError(`${init.method ?? 'GET'} ${url.origin}${url.pathname} failed: ${reason}`, {
      cause: error,
    });
  }
}

/** A short description of an error answer: its problem code and title, never a payload. */
async function problem(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { code?: unknown; title?: unknown; error?: unknown };
    const parts = [body.code, body.title, body.error].filter((part) => typeof part === 'string');
    if (parts.length > 0) return parts.join(' ');
  } catch {
    // not JSON
  }
  return text.slice(0, 200) || '(empty body)';
}

/** Reads the options from the environment; throws naming every missing variable. */
export function smokeOptionsFromEnv(env: NodeJS.ProcessEnv): SmokeOptions {
  const required = [
    'INGESTA_API_URL',
    'INGESTA_TOKEN_URL',
    'INGESTA_CLIENT_ID',
    'INGESTA_CLIENT_SECRET',
  ] as const;
  const missing = required.filter((name) => !env[name]);
  if (missing.length > 0) throw new SmokeTestError(`missing environment variables: ${missing.join(', ')}`);
  const readTimeoutMs = env.INGESTA_SMOKE_READ_TIMEOUT_MS
    ? Number(env.INGESTA_SMOKE_READ_TIMEOUT_MS)
    : undefined;
  if (readTimeoutMs !== undefined && !(readTimeoutMs > 0)) {
    throw new SmokeTestError('INGESTA_SMOKE_READ_TIMEOUT_MS must be a positive number of milliseconds');
  }
  return {
    apiUrl: env.INGESTA_API_URL ?? '',
    tokenUrl: env.INGESTA_TOKEN_URL ?? '',
    clientId: env.INGESTA_CLIENT_ID ?? '',
    clientSecret: env.INGESTA_CLIENT_SECRET ?? '',
    scope: env.INGESTA_TOKEN_SCOPE || undefined,
    revision: env.INGESTA_SMOKE_REVISION || undefined,
    readTimeoutMs,
  };
}

if (import.meta.main) {
  try {
    const result = await runSmokeTest({
      ...smokeOptionsFromEnv(process.env),
      log: (message) => process.stdout.write(`smoke: ${message}\n`),
    });
    process.stdout.write(
      `smoke: passed (${result.source} ${result.id}, read after ${result.readAfterMs} ms)\n`,
    );
  } catch (error) {
    console.error(`smoke: FAILED: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  }
}
