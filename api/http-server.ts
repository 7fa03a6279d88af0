import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http';

/**
 * Time limits of the API's HTTP server, so that no client holds a socket, and the capacity behind
 * it, for longer than it takes an honest client to send a request. docs/critical-points.md states
 * them.
 */
export interface HttpServerLimits {
  /** Whole request, headers and body, from its first byte, in ms (Node's `requestTimeout`). Default 30000. */
  requestTimeoutMs?: number;
  /** Headers of a request, in ms; at most `requestTimeoutMs` (Node's `headersTimeout`). Default 20000. */
  headersTimeoutMs?: number;
  /** Idle keep-alive socket, in ms: above the NLB's 350 s idle timeout so the balancer closes first. Default 360000. */
  keepAliveTimeoutMs?: number;
  /** Slowest body accepted, in bytes per second, measured over each `bodyRateWindowMs`. Default 1024. */
  minBodyBytesPerSec?: number;
  /** Window over which the body rate is measured, in ms. Default 5000. */
  bodyRateWindowMs?: number;
}

export const defaultHttpServerLimits = {
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 20_000,
  keepAliveTimeoutMs: 360_000,
  minBodyBytesPerSec: 1024,
  bodyRateWindowMs: 5_000,
} as const satisfies Required<HttpServerLimits>;

/** True when the request announces a body (which may not have arrived yet). */
export const hasBody = (req: IncomingMessage) =>
  req.headers['transfer-encoding'] !== undefined ||
  (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');

const timeoutBody = (detail: string) =>
  JSON.stringify({
    type: 'https://ingesta.dev/problems/request-timeout',
    title: 'Request Timeout',
    status: 408,
    code: 'REQUEST_TIMEOUT',
    detail,
  });

/**
 * Cuts off a request whose body arrives slower than the minimum rate: it answers 408 (if nothing
 * was answered yet) and closes the socket. The rate is measured on the socket's bytes, so it holds
 * whatever the route does with the body, including not reading it.
 */
function guardBodyRate(req: IncomingMessage, res: ServerResponse, minBytesPerSec: number, windowMs: number) {
  if (!hasBody(req) || req.complete) return;
  const socket = req.socket;
  let last = socket.bytesRead;
  const minBytes = Math.ceil((minBytesPerSec * windowMs) / 1000);
  const timer = setInterval(() => {
    if (req.complete || socket.destroyed) return stop();
    const read = socket.bytesRead - last;
    last = socket.bytesRead;
    if (read >= minBytes) return;
    stop();
    const detail = `the request body arrived slower than ${minBytesPerSec} bytes per second`;
    if (!res.headersSent) {
      res.shouldKeepAlive = false;
      res.writeHead(408, { 'content-type': 'application/problem+json', connection: 'close' });
      res.end(timeoutBody(detail), () => socket.destroy());
    } else socket.destroy();
  }, windowMs);
  timer.unref();
  // 'close' of the response comes exactly once, also when the socket goes away; nothing is left on
  // the socket, which a keep-alive connection shares between requests.
  const stop = () => {
    clearInterval(timer);
    req.off('end', stop);
    res.off('close', stop);
  };
  req.once('end', stop);
  res.once('close', stop);
}

/**
 * The API's HTTP server: timeouts given at construction, where Node checks that headers cannot
 * outlive the whole request, and a minimum body rate on top.
 */
export function createHttpServer(listener: RequestListener, limits: HttpServerLimits = {}): Server {
  const { requestTimeoutMs, headersTimeoutMs, keepAliveTimeoutMs, minBodyBytesPerSec, bodyRateWindowMs } = {
    ...defaultHttpServerLimits,
    ...limits,
  };
  const server = createServer({
    requestTimeout: requestTimeoutMs,
    headersTimeout: Math.min(headersTimeoutMs, requestTimeoutMs),
    keepAliveTimeout: keepAliveTimeoutMs,
    // Node checks the timeouts above this often; the default (30 s) would let a request run on to twice its limit.
    connectionsCheckingInterval: Math.min(1_000, requestTimeoutMs),
  });
  server.on('request', (req, res) => guardBodyRate(req, res, minBodyBytesPerSec, bodyRateWindowMs));
  server.on('request', listener);
  return server;
}
