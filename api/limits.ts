import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import { AppError } from '../platform/errors.ts';

/**
 * Per-principal rate limit (token subject, else client address). In-memory per pod: the effective
 * limit is this times the number of API pods; API Gateway throttling is the global bound.
 */
export function perPrincipalRateLimit(limitPerMinute: number): RequestHandler {
  return rateLimit({
    windowMs: 60_000,
    limit: limitPerMinute,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    keyGenerator: (req) => (req.principal ? `sub:${req.principal.subject}` : `ip:${req.ip ?? 'unknown'}`),
    // Keys are principals or addresses already normalised by `trust proxy`.
    validate: { keyGeneratorIpFallback: false },
    handler: (_req, _res, next, options) => {
      next(
        new AppError(429, 'RATE_LIMITED', `over ${options.limit} requests per minute`, {
          retryAfterSec: Math.ceil(options.windowMs / 1000),
        }),
      );
    },
  });
}

/** Addresses whose failures are remembered at most; beyond it the oldest are forgotten first. */
const maxTrackedAddresses = 100_000;

/**
 * Failed authentications per client address: past the limit within a minute, a client forging
 * tokens gets 429 before its token is even verified. Only 401 answers count, when they are sent, so
 * any number of concurrent requests with valid tokens from one address never trips it. In memory
 * per pod, like the per-principal limit.
 */
export function failedAuthRateLimit(limitPerMinute: number, now: () => number = Date.now): RequestHandler {
  const windowMs = 60_000;
  const failures = new Map<string, { count: number; resetAtMs: number }>();
  const record = (key: string) => {
    const at = now();
    const entry = failures.get(key);
    if (entry && entry.resetAtMs > at) {
      entry.count++;
      return;
    }
    failures.delete(key); // re-inserted last: the map stays ordered by window start
    failures.set(key, { count: 1, resetAtMs: at + windowMs });
    for (const [oldest, { resetAtMs }] of failures) {
      if (failures.size <= maxTrackedAddresses && resetAtMs > at) break;
      failures.delete(oldest);
    }
  };
  return (req, res, next) => {
    const key = req.ip ?? 'unknown';
    const entry = failures.get(key);
    const at = now();
    if (entry && entry.resetAtMs > at && entry.count >= limitPerMinute) {
      return next(
        new AppError(429, 'RATE_LIMITED', `over ${limitPerMinute} failed authentications per minute`, {
          retryAfterSec: Math.max(1, Math.ceil((entry.resetAtMs - at) / 1000)),
        }),
      );
    }
    res.once('finish', () => {
      if (res.statusCode === 401) record(key);
    });
    next();
  };
}

export interface LoadShedder {
  middleware: RequestHandler;
  /** Current event-loop lag estimate, in ms. */
  lagMs(): number;
  stop(): void;
}

/**
 * Sheds load before it collapses the process: while too many requests are in flight, or the event
 * loop lags past the bound, new requests get 503 with Retry-After at once instead of queueing.
 */
export function createLoadShedder(options: { maxInFlight: number; maxLagMs: number }): LoadShedder {
  let inFlight = 0;
  let lagMs = 0;
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  const timer = setInterval(() => {
    lagMs = histogram.max / 1e6;
    histogram.reset();
  }, 500);
  timer.unref();
  const overloaded = (detail: string) =>
    new AppError(503, 'OVERLOADED', `the server is overloaded (${detail}), retry later`, {
      retryAfterSec: 1,
    });
  const release = () => {
    inFlight--;
  };
  return {
    middleware: (_req, res, next) => {
      if (inFlight >= options.maxInFlight) return next(overloaded('too many requests in flight'));
      if (lagMs > options.maxLagMs) return next(overloaded('event loop lag'));
      inFlight++;
      // 'close' comes exactly once per response, after 'finish' or on its own when the client goes away.
      res.once('close', release);
      next();
    },
    lagMs: () => lagMs,
    stop: () => {
      clearInterval(timer);
      histogram.disable();
    },
  };
}
