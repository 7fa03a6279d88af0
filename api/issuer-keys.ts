import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { dependencyUnavailable } from '../platform/errors.ts';

/**
 * The token issuer's keys, fetched from its JWKS and kept so that trouble at the issuer does not
 * become a 401 for every client:
 * - each fetch is bounded in time (`fetchTimeoutMs`);
 * - a failed fetch (refused, 5xx, not a JWKS, too slow) starts a cooldown that doubles on each
 *   further failure up to `maxBackoffMs`: the issuer is asked at most once per cooldown, whatever
 *   the request rate, and concurrent requests share one fetch;
 * - keys older than `maxAgeMs` are refreshed in the background while they keep serving; when the
 *   issuer cannot be reached they keep serving, marked stale, until `maxStaleMs` past that age;
 * - without usable keys the answer is 503 DEPENDENCY_UNAVAILABLE with Retry-After, never a 401.
 * A token whose `kid` is unknown triggers a fetch (key rotation) at most once per `rotationCooldownMs`.
 */
export interface IssuerKeyOptions {
  /** Upper bound of one fetch, in ms. Default 2000. */
  fetchTimeoutMs?: number;
  /** Age at which keys are refreshed, in ms. Default 600000 (10 min). */
  maxAgeMs?: number;
  /** How long past `maxAgeMs` keys keep serving while the issuer is down, in ms. Default 3600000 (1 h). */
  maxStaleMs?: number;
  /** First cooldown after a failed fetch, in ms. Default 1000. */
  minBackoffMs?: number;
  /** Longest cooldown after failed fetches, in ms. Default 30000. */
  maxBackoffMs?: number;
  /** Least time between fetches caused by an unknown `kid`, in ms. Default 30000. */
  rotationCooldownMs?: number;
  /** Called after each fetch with its outcome, and whenever keys start or stop being served stale. */
  onFetch?: (outcome: 'ok' | 'failed') => void;
  onStale?: (stale: boolean) => void;
  now?: () => number;
}

/** The largest JWKS document read; issuers publish a handful of keys. */
const maxJwksBytes = 256 * 1024;

export class IssuerUnavailableError extends Error {
  readonly retryAfterSec: number;
  constructor(detail: string, retryAfterSec: number, cause?: unknown) {
    super(detail, { cause });
    this.name = 'IssuerUnavailableError';
    this.retryAfterSec = retryAfterSec;
  }
}

export const issuerUnavailable = (err: IssuerUnavailableError) =>
  dependencyUnavailable(`the token issuer's keys (${err.message})`, err, err.retryAfterSec);

export interface IssuerKeys {
  getKey: JWTVerifyGetKey;
  /** Fetches counted since start, for tests and reports. */
  fetchCount(): number;
}

async function fetchJwks(url: string, timeoutMs: number): Promise<JSONWebKeySet> {
  const response = await fetch(url, {
    signal: AbortSignal.timeout(timeoutMs),
    headers: { accept: 'application/json' },
    redirect: 'error',
  });
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`the issuer answered ${response.status}`);
  }
  const text = await response.text();
  if (text.length > maxJwksBytes) throw new Error('the JWKS document is too large');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error('the JWKS document is not JSON');
  }
  const keys = (value as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'object' || k === null)) {
    throw new Error('the JWKS document has no keys array');
  }
  return value as JSONWebKeySet;
}

export function createIssuerKeys(jwksUrl: string, options: IssuerKeyOptions = {}): IssuerKeys {
  const {
    fetchTimeoutMs = 2_000,
    maxAgeMs = 600_000,
    maxStaleMs = 3_600_000,
    minBackoffMs = 1_000,
    maxBackoffMs = 30_000,
    rotationCooldownMs = 30_000,
    onFetch = () => {},
    onStale = () => {},
    now = Date.now,
  } = options;
  let current: { resolve: ReturnType<typeof createLocalJWKSet>; fetchedAt: number } | undefined;
  let inFlight: Promise<void> | undefined;
  let failures = 0;
  let lastError: unknown;
  let retryAt = 0; // no fetch before this instant (cooldown after a failure)
  let lastFetchAt = Number.NEGATIVE_INFINITY;
  let stale = false;
  let fetches = 0;

  const setStale = (value: boolean) => {
    if (value !== stale) {
      stale = value;
      onStale(value);
    }
  };
  const retryAfterSec = () => Math.max(1, Math.ceil((retryAt - now()) / 1000));

  /** One fetch at a time; a failure sets the cooldown. Never rejects. */
  const refresh = (): Promise<void> => {
    inFlight ??= (async () => {
      fetches++;
      lastFetchAt = now();
      try {
        const jwks = await fetchJwks(jwksUrl, fetchTimeoutMs);
        current = { resolve: createLocalJWKSet(jwks), fetchedAt: now() };
        failures = 0;
        retryAt = 0;
        setStale(false);
        onFetch('ok');
      } catch (err) {
        failures++;
        lastError = err;
        retryAt = now() + Math.min(maxBackoffMs, minBackoffMs * 2 ** (failures - 1));
        onFetch('failed');
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  };
  const coolingDown = () => now() < retryAt;

  const unavailable = () => {
    const reason = lastError instanceof Error ? lastError.message : 'no keys fetched yet';
    return new IssuerUnavailableError(
      lastError instanceof Error && lastError.name === 'TimeoutError'
        ? 'the issuer did not answer in time'
        : reason,
      retryAfterSec(),
      lastError,
    );
  };

  /** Keys usable now: fresh, or stale within bounds; fetched first when there are none usable. */
  const usableKeys = async () => {
    const age = current ? now() - current.fetchedAt : Number.POSITIVE_INFINITY;
    if (current && age < maxAgeMs) return current.resolve;
    if (!coolingDown()) {
      if (current && age < maxAgeMs + maxStaleMs) {
        void refresh(); // in the background: requests keep the keys they have meanwhile
      } else {
        await refresh();
      }
    }
    const fresh = current !== undefined && now() - current.fetchedAt < maxAgeMs;
    // Stale: the keys are due (or there are none) and the issuer keeps failing; reported until a
    // fetch succeeds, also once the keys are too old to serve.
    setStale(!fresh && failures > 0);
    if (current && (fresh || now() - current.fetchedAt < maxAgeMs + maxStaleMs)) return current.resolve;
    throw unavailable();
  };

  return {
    fetchCount: () => fetches,
    getKey: async (header, token) => {
      const resolve = await usableKeys();
      try {
        return await resolve(header, token);
      } catch (err) {
        // An unknown kid may be a key the issuer has just rotated in: fetch once, within bounds.
        if (!(err instanceof errors.JWKSNoMatchingKey) || coolingDown()) throw err;
        if (now() - lastFetchAt < rotationCooldownMs) throw err;
        await refresh();
        if (!current || current.resolve === resolve) throw err;
        return current.resolve(header, token);
      }
    },
  };
}
