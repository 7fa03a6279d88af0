import { parseArgs } from 'node:util';
import { startApi } from '../api/server.ts';
import { createDatabase } from '../db/database.ts';
import { migrateLatest } from '../db/migrate.ts';
import { createLogger } from '../platform/logger.ts';
import { crashOnUnexpectedErrors, loadConfigOrExit } from '../platform/process.ts';
import { createShutdown, exitOnSignals, exitWhenOrphaned, type ShutdownStep } from '../platform/shutdown.ts';
import { localBanner } from './banner.ts';
import { removeStaleTemporaryDirs, startEmbeddedPostgres } from './embedded-postgres.ts';
import type { LocalMessaging } from './emulator.ts';
import { writeStateFile } from './state-file.ts';
import { siblingModule, startWorker } from './worker-thread.ts';

/**
 * `npm start`: ingesta on one machine with nothing configured. A real PostgreSQL (embedded) and the
 * SNS/SQS emulator, resources created as on AWS, migrations, then the API and the consumer. The
 * emulator and the consumer run in worker threads, so the API's event loop is its own. Ctrl-C (or
 * SIGTERM, or the terminal closing) stops everything and removes the temporary database.
 */
const { values: args } = parseArgs({
  args: process.argv.slice(2),
  options: { 'data-dir': { type: 'string' } },
});
const settings = loadConfigOrExit('local');
// Lines go through process.stdout, so a terminal that hung up (SIGHUP) fails writes, not the process.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
const log = createLogger({ level: settings.logLevel, name: 'ingesta-local', destination: process.stdout });
crashOnUnexpectedErrors(log);
const dataDir = args['data-dir'] ?? settings.local.dataDir;

const staleDirs = removeStaleTemporaryDirs();
if (staleDirs.length > 0) log.info({ dirs: staleDirs }, 'removed temporary databases of earlier runs');
log.info({ dataDir: dataDir ?? 'temporary' }, 'starting embedded PostgreSQL and the SNS/SQS emulator');
const postgresStarting = startEmbeddedPostgres({ dataDir });
const messagingStarting = startWorker<Omit<LocalMessaging, 'stop'>>(
  siblingModule('emulator-worker', import.meta.url),
  'emulator',
  {},
);
/** Stops a part once its start has ended; one that failed to start has nothing to stop. */
const stopWhenStarted = (starting: Promise<{ stop(): Promise<void> }>) => async () => {
  const part = await starting.catch(() => undefined);
  await part?.stop();
};
// Filled in as parts start, ahead of the emulator and the database, which stop last. Registered
// before anything has started: a signal or a failure at any point still stops what was started.
const steps: ShutdownStep[] = [
  { name: 'stop SNS/SQS emulator', run: stopWhenStarted(messagingStarting) },
  { name: 'stop embedded PostgreSQL', run: stopWhenStarted(postgresStarting) },
];
const beforeBackends = (...started: ShutdownStep[]) => steps.splice(steps.length - 2, 0, ...started);
const shutdownTimeoutMs = Math.min(settings.shutdownTimeoutMs, 10_000);
const stopped = createShutdown({ log, timeoutMs: shutdownTimeoutMs, steps });
exitOnSignals(stopped, log);
exitWhenOrphaned(stopped, log);
const failedToStart = async (err: unknown): Promise<never> => {
  log.fatal({ err }, 'local mode failed to start');
  await stopped.run('failed to start');
  process.exit(1);
};
const [postgres, messaging] = await Promise.all([postgresStarting, messagingStarting]).catch(failedToStart);

const { ready: queues } = messaging;
const env = {
  ...process.env,
  DATABASE_URL: postgres.url,
  AWS_REGION: queues.region,
  AWS_ENDPOINT_URL: queues.endpoint,
  INGEST_TOPIC_ARN: queues.topicArn,
  INGEST_QUEUE_URL: queues.queueUrl,
  INGEST_DLQ_URL: queues.dlqUrl,
  // Local mode is the one place auth is off by default (the API warns loudly at start); AUTH_* turn it on.
  AUTH_DISABLED: process.env.AUTH_DISABLED ?? (process.env.AUTH_JWKS_URL ? 'false' : 'true'),
  // On a workstation: a quicker drain than the production default.
  SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs),
};
const apiConfig = loadConfigOrExit('api', env);
const consumerEnv = {
  ...env,
  // Next to the API's, or a free one of its own when the API's is picked at random (0).
  ADMIN_PORT: String(apiConfig.adminPort === 0 ? 0 : apiConfig.adminPort + 1),
};
loadConfigOrExit('consumer', consumerEnv);

try {
  const migrator = createDatabase({ ...apiConfig.database, applicationName: 'ingesta-migrate' });
  try {
    await migrateLatest(migrator, apiConfig.database.url);
  } finally {
    await migrator.destroy();
  }
  const host = '127.0.0.1';
  const api = await startApi(apiConfig, log.child({ component: 'api' }), { host });
  beforeBackends(...api.shutdownSteps.map((s) => ({ ...s, name: `api: ${s.name}` })));
  const consumer = await startWorker<{ adminPort: number }>(
    siblingModule('consumer-worker', import.meta.url),
    'consumer',
    { env: consumerEnv },
  );
  beforeBackends({ name: 'consumer: drain and stop', run: () => consumer.stop() });
  for (const [name, worker] of [
    ['consumer', consumer],
    ['emulator', messaging],
  ] as const) {
    worker.onFailure((err) => {
      log.fatal({ err, worker: name }, 'local mode worker failed');
      void stopped.run(`${name} failed`).then(() => process.exit(1));
    });
  }

  const state = writeStateFile({
    pid: process.pid,
    startedAt: new Date().toISOString(),
    apiUrl: `http://localhost:${api.port}`,
    adminPorts: { api: api.adminPort, consumer: consumer.ready.adminPort },
    awsRegion: queues.region,
    awsEndpointUrl: queues.endpoint,
    topicArn: queues.topicArn,
    queueUrl: queues.queueUrl,
    dlqUrl: queues.dlqUrl,
    postgres: { pid: postgres.pid, port: Number(new URL(postgres.url).port) },
    dataDir: postgres.persistent ? postgres.dataDir : undefined,
  });
  steps.unshift({ name: 'remove state file', run: () => state.remove() });
  log.info(
    {
      apiUrl: `http://localhost:${api.port}`,
      adminPorts: { api: api.adminPort, consumer: consumer.ready.adminPort },
      awsEndpointUrl: queues.endpoint,
      awsRegion: queues.region,
      topicArn: queues.topicArn,
      queueUrl: queues.queueUrl,
      dlqUrl: queues.dlqUrl,
      postgresPort: Number(new URL(postgres.url).port),
      dataDir: postgres.persistent ? postgres.dataDir : undefined,
      stateFile: state.path,
    },
    'local mode ready',
  );
  process.stdout.write(
    localBanner({
      apiUrl: `http://localhost:${api.port}`,
      adminPorts: { api: api.adminPort, consumer: consumer.ready.adminPort },
      authOn: apiConfig.api.auth !== undefined,
      postgres,
      queues,
    }),
  );
} catch (err) {
  await failedToStart(err);
}
