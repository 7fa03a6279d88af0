import autocannon from 'autocannon';

export interface LoadOptions {
  url: string;
  /** Concurrent connections, each with one request in flight. */
  connections: number;
  durationSec: number;
  contentType: string;
  /** A fresh body per request (unique event ids). */
  body: () => string;
  /** Requests per second across all connections; unset = as fast as the server answers. */
  overallRate?: number;
}

export interface LoadResult {
  /** 2xx responses per second over the measured window. */
  okPerSec: number;
  ok: number;
  p50Ms: number;
  p99Ms: number;
  /** Connection errors and timeouts. */
  errors: number;
  non2xx: number;
}

/** Drives one HTTP target with autocannon, in this process. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.durationSec,
    ...(options.overallRate ? { overallRate: options.overallRate } : {}),
    timeout: 10,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': options.contentType },
        setupRequest: (request) => ({ ...request, body: options.body() }),
      },
    ],
  });
  return {
    okPerSec: result['2xx'] / result.duration,
    ok: result['2xx'],
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors,
    non2xx: result.non2xx,
  };
}
