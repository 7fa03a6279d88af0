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

/**
 * Failed authentications per client address: past the limit, a client forging tokens gets 429
 * before its token is even verified. Only 401 answers count; a valid token is never slowed by it.
 */
export function failedAuthRateLimit(limitPerMinute: number): RequestHandler {
  return rateLimit({
    windowMs: 60_000,
    limit: limitPerMinute,
    // The per-principal limit's headers are the ones clients act on.
    standardHeaders: false,
    legacyHeaders: false,
    keyGenerator: (req) => `ip:${req.ip ?? 'unknown'}`,
    validate: { keyGeneratorIpFallback: false },
    skipSuccessfulRequests: true,
    requestWasSuccessful: (_req, res) => res.statusCode !== 401,
    handler: (_req, _res, next, options) => {
      next(
        new AppError(429, 'RATE_LIMITED', `over ${options.limit} failed authentications per minute`, {
          retryAfterSec: Math.ceil(options.windowMs / 1000),
        }),
      );
    },
  });
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
