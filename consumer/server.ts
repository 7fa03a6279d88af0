import { Registry } from 'prom-client';
import { createDatabase, observePool } from '../db/database.ts';
import { EventRepository } from '../db/event-repository.ts';
import { createAdminServer } from '../platform/admin-server.ts';
import { createSnsClient, createSqsClient } from '../platform/aws.ts';
import type { Config } from '../platform/config.ts';
import type { Logger } from '../platform/logger.ts';
import { createMetrics } from '../platform/metrics.ts';
import type { ShutdownStep } from '../platform/shutdown.ts';
import { flushTelemetry } from '../platform/telemetry/flush.ts';
import { createReplayMetrics } from '../replay/metrics.ts';
import { ReplayStore } from '../replay/store.ts';
import { createReplayer } from '../replay/worker.ts';
import { createBatchHandler } from './batch-handler.ts';
import { createConsumer } from './consumer.ts';
import { startQueueSampler } from './queue-sampler.ts';

export interface RunningConsumer {
  adminPort: number;
  shutdownSteps: ShutdownStep[];
}

/** The consumer's composition root: pool, SQS client, pollers, queue sampler and admin port. */
export async function startConsumer(config: Config, log: Logger, host = '0.0.0.0'): Promise<RunningConsumer> {
  const registry = new Registry();
  const metrics = createMetrics(registry, 'consumer');
  const db = createDatabase({ ...config.database, applicationName: 'ingesta-consumer', log });
  observePool(db, metrics);
  const repository = new EventRepository(db);
  const { consumer: c } = config;
  const sqs = createSqsClient(config.aws, c.waitTimeSec);
  const handleBatch = createBatchHandler({
    sqs,
    queueUrl: c.queueUrl,
    dlqUrl: c.dlqUrl,
    repository,
    metrics,
    log,
    maxRetryDelaySec: c.visibilityTimeoutSec,
    timePolicy: config.eventTime,
  });
  const sampler = startQueueSampler({
    sqs,
    queues: { main: c.queueUrl, dlq: c.dlqUrl },
    metrics,
    log,
    intervalMs: c.queueMetricsIntervalMs,
  });
  const consumer = createConsumer({
    sqs,
    queueUrl: c.queueUrl,
    handleBatch,
    probeDatabase: () => repository.probeWrites(),
    metrics,
    log,
    batchSize: c.batchSize,
    waitTimeSec: c.waitTimeSec,
    visibilityTimeoutSec: c.visibilityTimeoutSec,
    pollers: c.pollers,
    receipts: sampler,
    stopTimeoutMs: Math.max(1_000, config.shutdownTimeoutMs - 2_000),
  });
  const startedAt = Date.now() / 1000;
  const admin = createAdminServer({
    registry,
    log,
    readiness: [{ name: 'database', check: () => repository.ping() }],
    liveness: [
      {
        // A consumer that silently stopped polling is restarted; one paused by a database outage is not.
        name: 'polling',
        check: async () => {
          const since = Math.max(consumer.lastPollAt(), startedAt);
          if (!consumer.isPaused() && Date.now() / 1000 - since > c.stallAfterSec) {
            throw new Error(`no completed poll for over ${c.stallAfterSec} s`);
          }
        },
      },
    ],
  });
  const adminPort = await admin.listen(config.adminPort, host);
  consumer.start();
  // Replays run beside the pollers, one at a time per pod, when the deployment allows any target.
  const sns = createSnsClient(config.aws);
  const replayMetrics = createReplayMetrics(registry);
  const replayer = createReplayer({
    store: new ReplayStore(db),
    sqs,
    sns,
    log,
    leaseSec: config.replay.leaseSec,
    onSent: (count) => replayMetrics.eventsSent.inc(count),
    onProgress: () => replayMetrics.lastProgress.set(Date.now() / 1000),
    onLease: (held) => replayMetrics.active.set(held),
  });
  if (config.replay.targets.length > 0) replayer.start();
  log.info({ adminPort, pollers: c.pollers, queueUrl: c.queueUrl }, 'consumer polling');

  return {
    adminPort,
    shutdownSteps: [
      { name: 'readiness off', run: () => admin.setDraining() },
      { name: 'stop polling, finish in-flight batches', run: () => consumer.stop() },
      { name: 'stop replays, record their position', run: () => replayer.stop() },
      { name: 'stop queue sampler', run: () => sampler.stop() },
      { name: 'close database pool', run: () => db.destroy() },
      { name: 'close SQS client', run: () => sqs.destroy() },
      { name: 'close SNS client', run: () => sns.destroy() },
      { name: 'close admin server', run: () => admin.close() },
      { name: 'flush traces', run: () => flushTelemetry() },
    ],
  };
}
