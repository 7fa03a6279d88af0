import { startApi } from '../api/server.ts';
import { startConsumer } from '../consumer/server.ts';
import { createDatabase } from '../db/database.ts';
import { migrateLatest } from '../db/migrate.ts';
import { createLogger } from '../platform/logger.ts';
import { crashOnUnexpectedErrors, loadConfigOrExit } from '../platform/process.ts';
import { createShutdown, exitOnSignals, type ShutdownStep } from '../platform/shutdown.ts';
import { startEmbeddedPostgres } from './embedded-postgres.ts';
import { startLocalMessaging } from './emulator.ts';

/**
 * `npm start`: ingesta on one machine with nothing configured. A real PostgreSQL (embedded) and an
 * in-process SNS/SQS emulator, resources created as on AWS, migrations, then the API and the
 * consumer. Ctrl-C stops everything and removes the temporary database.
 */
const settings = loadConfigOrExit('local');
const log = createLogger({ level: settings.logLevel, name: 'ingesta-local' });
crashOnUnexpectedErrors(log);
log.info('starting embedded PostgreSQL and the SNS/SQS emulator');
const [postgres, messaging] = await Promise.all([startEmbeddedPostgres(), startLocalMessaging()]);

const env = {
  ...process.env,
  DATABASE_URL: postgres.url,
  AWS_REGION: messaging.region,
  AWS_ENDPOINT_URL: messaging.endpoint,
  INGEST_TOPIC_ARN: messaging.topicArn,
  INGEST_QUEUE_URL: messaging.queueUrl,
  INGEST_DLQ_URL: messaging.dlqUrl,
  // Local mode is the one place auth is off by default (the API warns loudly at start); AUTH_* turn it on.
  AUTH_DISABLED: process.env.AUTH_DISABLED ?? (process.env.AUTH_JWKS_URL ? 'false' : 'true'),
  // Local data is throwaway: a quicker drain than the production default.
  SHUTDOWN_TIMEOUT_MS: String(Math.min(settings.shutdownTimeoutMs, 10_000)),
};
const apiConfig = loadConfigOrExit('api', env);
const consumerConfig = loadConfigOrExit('consumer', {
  ...env,
  // Next to the API's, or a free one of its own when the API's is picked at random (0).
  ADMIN_PORT: String(apiConfig.adminPort === 0 ? 0 : apiConfig.adminPort + 1),
});

const migrator = createDatabase({ ...apiConfig.database, applicationName: 'ingesta-migrate' });
await migrateLatest(migrator, apiConfig.database.url);
await migrator.destroy();

const host = '127.0.0.1';
const api = await startApi(apiConfig, log.child({ component: 'api' }), { host });
const consumer = await startConsumer(consumerConfig, log.child({ component: 'consumer' }), host);

const steps: ShutdownStep[] = [
  ...api.shutdownSteps.map((s) => ({ ...s, name: `api: ${s.name}` })),
  ...consumer.shutdownSteps.map((s) => ({ ...s, name: `consumer: ${s.name}` })),
  { name: 'stop SNS/SQS emulator', run: () => messaging.stop() },
  { name: 'stop embedded PostgreSQL', run: () => postgres.stop() },
];
exitOnSignals(createShutdown({ log, timeoutMs: apiConfig.shutdownTimeoutMs, steps }), log);

const base = `http://localhost:${api.port}`;
const example = JSON.stringify({
  specversion: '1.0',
  id: 'order-1001',
  source: '/shop/web',
  type: 'order.created',
  subject: 'user-42',
  data: { productId: 'p-7', quantity: 2 },
});
const banner = `
  ingesta is running (local mode: embedded PostgreSQL, in-process SNS/SQS emulator).

${
  apiConfig.api.auth
    ? '  Authentication is on (AUTH_* set): send a bearer token with each request.'
    : '  !! Authentication is OFF in local mode. Never expose this process. !!'
}

  API         ${base}
  Metrics     http://localhost:${api.adminPort}/metrics (api), http://localhost:${consumer.adminPort}/metrics (consumer)
  OpenAPI     ${base}/openapi.json

  Send an event:
    curl -i -X POST ${base}/v1/events -H 'content-type: application/cloudevents+json' \\
      -d '${example}'

  Read it back:
    curl '${base}/v1/events?type=order.created&subject=user-42'

  Ctrl-C stops everything.
`;
process.stdout.write(banner);
