import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { createDatabase, observePool } from '../db/database.ts';
import { EventRepository } from '../db/event-repository.ts';
import { countPartitions } from '../db/partitions.ts';
import { recordAuditSamples } from '../db/store-audit.ts';
import { createAdminServer } from '../platform/admin-server.ts';
import { createSnsClient } from '../platform/aws.ts';
import type { Config } from '../platform/config.ts';
import { createGuardMetrics, samplePartitions } from '../platform/guard-metrics.ts';
import type { Logger } from '../platform/logger.ts';
import { createMetrics } from '../platform/metrics.ts';
import type { ShutdownStep } from '../platform/shutdown.ts';
import { flushTelemetry } from '../platform/telemetry/flush.ts';
import { ReplayStore } from '../replay/store.ts';
import { createApp } from './app.ts';
import { createJwtAuthenticator } from './auth.ts';
import { createHttpServer } from './http-server.ts';
import { loadOpenApiDocument } from './openapi.ts';
import { createSnsPublisher, type EventPublisher } from './sns-publisher.ts';

export interface StartApiOptions {
  /** Interface to listen on. Default `0.0.0.0`. */
  host?: string;
  /**
   * Where accepted events go. Default: the SNS topic of `config.api.topicArn`. The benchmarks pass
   * one that accepts at once, to measure the API's own cost without publishing.
   */
  publisher?: EventPublisher;
}

export interface RunningApi {
  port: number;
  adminPort: number;
  /** Ordered drain: readiness off, stop intake and finish in-flight requests, close clients. */
  shutdownSteps: ShutdownStep[];
}

/**
 * The API's composition root: creates the pool and clients once, listens, and returns how to stop.
 * Idle keep-alive sockets outlive the NLB's idle timeout so the load balancer, not Node, closes them;
 * requests themselves are held to the limits of ./http-server.ts.
 */
export async function startApi(
  config: Config,
  log: Logger,
  { host = '0.0.0.0', publisher: givenPublisher }: StartApiOptions = {},
): Promise<RunningApi> {
  const registry = new Registry();
  const metrics = createMetrics(registry, 'api');
  const db = createDatabase({ ...config.database, applicationName: 'ingesta-api', log });
  observePool(db, metrics);
  const repository = new EventRepository(db);
  const guards = createGuardMetrics(registry);
  samplePartitions(guards, () => countPartitions(db));
  // Made even when a publisher is given: it opens no connection until used, and the shutdown steps
  // stay those of the real API.
  const sns = createSnsClient(config.aws);
  const publisher = givenPublisher ?? createSnsPublisher({ sns, topicArn: config.api.topicArn, log });
  const { api } = config;
  if (!api.auth) log.warn('AUTHENTICATION IS OFF: every caller may read and write events');
  const app = createApp({
    log,
    metrics,
    repository,
    publisher,
    replays: {
      store: new ReplayStore(db),
      allowedTargets: config.replay.targets,
      maxRatePerSec: config.replay.maxRatePerSec,
    },
    auditSamples: {
      rate: api.auditSampleRate,
      record: (keys, acceptedAt) => recordAuditSamples(db, keys, acceptedAt),
    },
    openApiDocument: loadOpenApiDocument(),
    timePolicy: config.eventTime,
    security: {
      ...(api.auth
        ? {
            authenticate: createJwtAuthenticator(api.auth, {
              keys: {
                onFetch: (outcome) => guards.jwksFetches.inc({ outcome }),
                onStale: (stale) => {
                  guards.authKeysStale.set(stale ? 1 : 0);
                  if (stale) log.warn('token issuer unreachable: verifying tokens with stale keys');
                },
              },
            }),
          }
        : {}),
      rateLimitPerMinute: api.rateLimitPerMinute,
      failedAuthPerMinute: api.failedAuthPerMinute,
      trustProxyHops: api.trustProxyHops,
      maxInFlightRequests: api.maxInFlightRequests,
      maxEventLoopLagMs: api.maxEventLoopLagMs,
    },
  });

  const server = createHttpServer(app);
  // While draining, a keep-alive connection is closed as soon as its last response is written.
  let draining = false;
  server.on('request', (_req, res) => {
    res.once('finish', () => {
      if (draining) setImmediate(() => server.closeIdleConnections());
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.api.port, host, resolve);
  });
  const port = (server.address() as AddressInfo).port;

  const admin = createAdminServer({
    registry,
    log,
    // Ingest needs SNS, not PostgreSQL: a database outage must not take the API out of the load
    // balancer, or POSTs that would be accepted are refused at the edge. Reads answer 503 on their
    // own meanwhile; /readyz still reports the database, as `degraded`.
    readiness: [{ name: 'database', check: () => repository.ping(), required: false }],
  });
  const adminPort = await admin.listen(config.adminPort, host);
  log.info({ port, adminPort }, 'api listening');

  return {
    port,
    adminPort,
    shutdownSteps: [
      { name: 'readiness off', run: () => admin.setDraining() },
      {
        name: 'stop intake, finish in-flight requests',
        run: () =>
          new Promise<void>((resolve) => {
            draining = true;
            server.close(() => resolve());
            server.closeIdleConnections();
          }),
      },
      { name: 'close database pool', run: () => db.destroy() },
      { name: 'close SNS client', run: () => sns.destroy() },
      { name: 'close admin server', run: () => admin.close() },
      { name: 'flush traces', run: () => flushTelemetry() },
    ],
  };
}
