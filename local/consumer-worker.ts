/** The consumer in a worker thread of its own (see worker-thread.ts), configured by main's environment. */
import { workerData } from 'node:worker_threads';
import { startConsumer } from '../consumer/server.ts';
import { loadConfig } from '../platform/config.ts';
import { createLogger } from '../platform/logger.ts';
import { createShutdown } from '../platform/shutdown.ts';
import { serveInWorker } from './worker-thread.ts';

const { env } = workerData as { env: Record<string, string> };

await serveInWorker(async () => {
  const config = loadConfig('consumer', env);
  const log = createLogger({
    level: config.logLevel,
    name: 'ingesta-local',
    destination: process.stdout,
  }).child({
    component: 'consumer',
  });
  const consumer = await startConsumer(config, log, '127.0.0.1');
  // The main thread holds the overall deadline; this one only keeps the steps in order.
  const shutdown = createShutdown({
    log,
    timeoutMs: config.shutdownTimeoutMs,
    steps: consumer.shutdownSteps,
  });
  return {
    value: { adminPort: consumer.adminPort },
    stop: async () => void (await shutdown.run('local mode stopping')),
  };
});
