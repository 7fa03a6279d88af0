import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { exposition, metricsText, negotiateFormat } from './exposition.ts';
import type { Logger } from './logger.ts';

export interface HealthCheck {
  name: string;
  /** Resolves when healthy, rejects with the reason otherwise. */
  check: () => Promise<void>;
  /**
   * False for a dependency only some of the work needs: its failure is reported in the body
   * (`degraded`) but leaves the process ready. Default true.
   */
  required?: boolean;
}

export interface AdminServerOptions {
  registry: Registry;
  log: Logger;
  /** Checks behind /readyz: the dependencies this process needs to do its work. */
  readiness: HealthCheck[];
  /** Checks behind /livez: the process itself (never dependencies, or an outage restarts every pod). */
  liveness?: HealthCheck[];
  /** Per-check deadline, so a hung dependency answers "not ready" instead of hanging the probe. Default 2000. */
  checkTimeoutMs?: number;
}

export interface AdminServer {
  server: Server;
  /** Turns /readyz false so load balancers stop routing before intake stops. */
  setDraining(): void;
  listen(port: number, host?: string): Promise<number>;
  close(): Promise<void>;
}

async function runChecks(checks: HealthCheck[], timeoutMs: number) {
  const results = await Promise.all(
    checks.map(async ({ name, check, required = true }) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          check(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        return { name, required, ok: true };
      } catch (err) {
        return { name, required, ok: false, error: err instanceof Error ? err.message : String(err) };
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return {
    ok: results.every((r) => r.ok || !r.required),
    degraded: results.some((r) => !r.ok && !r.required),
    checks: results,
  };
}

/** The admin port: /metrics, /livez, /readyz. Never routed through the public API. */
export function createAdminServer(options: AdminServerOptions): AdminServer {
  const { registry, log, readiness, liveness = [], checkTimeoutMs = 2_000 } = options;
  let draining = false;
  const send = (res: import('node:http').ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'method not allowed' });
    if (path === '/metrics') {
      // OpenMetrics when asked for (Prometheus asks by default): it carries the exemplars.
      const format = negotiateFormat(req.headers.accept);
      metricsText(registry, format).then(
        (text) => {
          res.writeHead(200, { 'content-type': exposition[format] });
          res.end(text);
        },
        (err: unknown) => {
          log.error({ err }, 'metrics collection failed');
          send(res, 500, { error: 'metrics collection failed' });
        },
      );
      return;
    }
    if (path === '/livez') {
      void runChecks(liveness, checkTimeoutMs).then((result) => send(res, result.ok ? 200 : 503, result));
      return;
    }
    if (path === '/readyz') {
      if (draining) return send(res, 503, { ok: false, draining: true, checks: [] });
      void runChecks(readiness, checkTimeoutMs).then((result) => {
        if (!result.ok) log.warn({ checks: result.checks }, 'not ready');
        else if (result.degraded) log.warn({ checks: result.checks }, 'ready, degraded');
        send(res, result.ok ? 200 : 503, result);
      });
      return;
    }
    send(res, 404, { error: 'not found', paths: ['/metrics', '/livez', '/readyz'] });
  });
  server.keepAliveTimeout = 65_000;
  return {
    server,
    setDraining() {
      draining = true;
    },
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
