import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';

/** One process to scrape, labelled the way the Prometheus Operator labels a ServiceMonitor target. */
export interface ScrapeTarget {
  /** The Service name, as the operator sets `job`. */
  job: string;
  port: number;
  labels: Record<string, string>;
}

/** The labels the Prometheus Operator puts on a pod scraped through the chart's ServiceMonitor. */
export function serviceMonitorTarget(
  component: 'api' | 'consumer',
  port: number,
  namespace: string,
): ScrapeTarget {
  const service = `ingesta-${component}`;
  return {
    job: service,
    port,
    labels: {
      namespace,
      service,
      pod: `${service}-5d8f7c9b4-x7k2p`,
      container: component,
      endpoint: 'admin',
      component,
    },
  };
}

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export type QueryResult =
  | { status: 'success'; data: { resultType: 'vector'; result: Sample[] } }
  | { status: 'success'; data: { resultType: 'scalar' | 'string'; result: [number, string] } }
  | { status: 'error'; errorType: string; error: string };

export interface RuleGroupState {
  name: string;
  file: string;
  rules: {
    name: string;
    type: 'recording' | 'alerting';
    health: string;
    lastError?: string;
    query: string;
  }[];
}

export interface PrometheusServer {
  url: string;
  /** Everything Prometheus logged, for failure messages. */
  logs: string[];
  /** Instant query (`/api/v1/query`) at `timeSec`, or at Prometheus' now. Errors come back as a result. */
  query(expr: string, timeSec?: number): Promise<QueryResult>;
  /** The `data` of a GET on the HTTP API, e.g. `/api/v1/rules`. */
  api<T>(path: string): Promise<T>;
  /** Resolves once every target has been scraped successfully at least once after `afterMs`. */
  waitForScrapes(afterMs: number, deadlineMs: number): Promise<void>;
  stop(): Promise<void>;
}

/** The `prometheus` binary: `PROMETHEUS` when set, else the one on PATH (Debian's `prometheus` package). */
export function locatePrometheus(): string {
  const candidate = process.env.PROMETHEUS ?? 'prometheus';
  const probe = spawnSync(candidate, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      `prometheus not found (tried "${candidate}"). Install it, e.g. on Debian/Ubuntu:\n` +
        '  sudo apt-get update && sudo apt-get install -y prometheus\n' +
        'or download it from https://prometheus.io/download/ and set PROMETHEUS=/path/to/prometheus.',
    );
  }
  return candidate;
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

/**
 * Polls `check` until it returns a value other than undefined, or fails with `describe()` at the deadline.
 * An exception from `check` ends the wait at once.
 */
export async function pollUntil<T>(
  check: () => Promise<T | undefined>,
  deadlineMs: number,
  describe: () => string,
  intervalMs = 250,
): Promise<T> {
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadlineMs) throw new Error(`timed out: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Runs a real Prometheus in a scratch directory: scrapes the targets and evaluates the rules files every
 * `intervalSec`, listens on a free loopback port, and resolves once it is ready and every target is up.
 */
export async function startPrometheus(options: {
  targets: ScrapeTarget[];
  ruleFiles: string[];
  intervalSec: number;
  deadlineMs: number;
}): Promise<PrometheusServer> {
  const binary = locatePrometheus();
  const dir = mkdtempSync(join(tmpdir(), 'ingesta-prometheus-'));
  const interval = `${options.intervalSec}s`;
  const config = {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    rule_files: options.ruleFiles,
    scrape_configs: options.targets.map((target) => ({
      job_name: target.job,
      metrics_path: '/metrics',
      static_configs: [{ targets: [`127.0.0.1:${target.port}`], labels: target.labels }],
    })),
  };
  writeFileSync(join(dir, 'prometheus.yml'), stringify(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logs: string[] = [];
  const child: ChildProcess = spawn(
    binary,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  createInterface({ input: child.stdout! }).on('line', (line) => logs.push(line));
  createInterface({ input: child.stderr! }).on('line', (line) => logs.push(line));
  const exited = once(child, 'exit');
  // Never outlive the test runner, even when it dies before `stop()`.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  async function api<T>(path: string): Promise<T> {
    const res = await fetch(`${url}${path}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`${path}: ${body.error}`);
    return body.data;
  }

  async function activeTargets() {
    const data = await api<{
      activeTargets: {
        labels: Record<string, string>;
        health: string;
        lastScrape: string;
        lastError: string;
      }[];
    }>('/api/v1/targets?state=active');
    return data.activeTargets;
  }

  const server: PrometheusServer = {
    url,
    logs,
    async query(expr, timeSec) {
      const params = new URLSearchParams({ query: expr });
      if (timeSec !== undefined) params.set('time', String(timeSec));
      const res = await fetch(`${url}/api/v1/query`, { method: 'POST', body: params });
      return (await res.json()) as QueryResult;
    },
    api,
    async waitForScrapes(afterMs, deadlineMs) {
      await pollUntil(
        async () => {
          const targets = await activeTargets().catch(() => []);
          const done =
            targets.length === options.targets.length &&
            targets.every((t) => t.health === 'up' && Date.parse(t.lastScrape) > afterMs);
          return done ? true : undefined;
        },
        deadlineMs,
        () => `every target scraped after ${new Date(afterMs).toISOString()}\n${logs.join('\n')}`,
        100,
      );
    },
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    await pollUntil(
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited:\n${logs.join('\n')}`);
        const res = await fetch(`${url}/-/ready`).catch(() => undefined);
        return res?.ok ? true : undefined;
      },
      options.deadlineMs,
      () => `prometheus ready on ${url}\n${logs.join('\n')}`,
    );
    await server.waitForScrapes(0, options.deadlineMs);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}
