import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import {
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import pg from 'pg';
import { createDatabase } from '../../../db/database.ts';
import { migrateLatest } from '../../../db/migrate.ts';
import { createTestDatabase } from '../../support/postgres.ts';
import { type RunningProcess, spawnEntry } from '../../support/processes.ts';
import { type EmulatorProcess, startEmulatorProcess } from './emulator.ts';
import { type LoadGenerator, type LoadOptions, startLoad } from './load.ts';
import { type RestartablePostgres, startRestartablePostgres } from './restartable-postgres.ts';

/**
 * Settings every scenario runs the processes with: a short long poll and visibility timeout so
 * redeliveries happen within a test's time, a statement timeout well under it (the config insists),
 * and a rate limit out of the way (the load generator is one client address).
 */
export const faultEnv = {
  PORT: '0',
  ADMIN_PORT: '0',
  LOG_LEVEL: 'info',
  CONSUMER_WAIT_TIME_SEC: '1',
  CONSUMER_VISIBILITY_TIMEOUT_SEC: '10',
  DATABASE_STATEMENT_TIMEOUT_MS: '2000',
  SHUTDOWN_TIMEOUT_MS: '10000',
  QUEUE_METRICS_INTERVAL_MS: '1000',
  RATE_LIMIT_PER_MINUTE: '1000000',
} as const;

export interface ApiProcess {
  process: RunningProcess;
  baseUrl: string;
  adminPort: number;
}

export interface ConsumerProcess {
  process: RunningProcess;
  adminPort: number;
}

export type QueueName = 'main' | 'dlq';

export interface Scenario {
  /** The environment the api and consumer processes get. */
  env: Record<string, string>;
  databaseUrl: string;
  /** Set when the scenario asked for a PostgreSQL it may stop. */
  restartablePostgres: RestartablePostgres | undefined;
  emulator: EmulatorProcess;
  /** The test's own connections, for checks. */
  db: pg.Pool;
  /** The test's own SQS client, straight to the emulator. */
  sqs: SQSClient;
  startApi(env?: Record<string, string>): Promise<ApiProcess>;
  startConsumer(env?: Record<string, string>): Promise<ConsumerProcess>;
  /** Starts a load generator that `close()` aborts if the scenario fails before stopping it. */
  startLoad(options: LoadOptions): LoadGenerator;
  queueUrl(queue: QueueName): string;
  queueDepth(queue: QueueName): Promise<{ visible: number; inFlight: number }>;
  /** Sends a message straight to the main queue, as another producer (or a redelivery) would; returns its id. */
  sendRaw(body: string, attributes?: Record<string, string>): Promise<string>;
  /** Receives every message of a queue once (without deleting), e.g. to read the DLQ. */
  peekAll(queue: QueueName): Promise<Message[]>;
  /** Ids stored for a source. */
  storedIds(source: string): Promise<string[]>;
  /** Resolves once `count` rows of `source` are stored; rejects with what is missing after `timeoutMs`. */
  waitForStored(source: string, count: number, timeoutMs?: number): Promise<void>;
  /**
   * Asserts the store holds exactly the accepted events of `source`, each once, and that the minute,
   * hour and day rollups each count them exactly.
   */
  reconcile(source: string, accepted: Iterable<string>): Promise<void>;
  /** Writes the last log lines of every process the scenario started to stderr. */
  dumpLogs(): void;
  /** Kills whatever still runs, drops the database and removes the emulator's state. */
  close(): Promise<void>;
}

/** Polls `check` until it returns a value other than undefined; rejects after `timeoutMs` naming `what`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  options: { timeoutMs?: number; intervalMs?: number; signal?: AbortSignal } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let lastError: unknown;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`, { cause: lastError });
    }
    await delay(options.intervalMs ?? 100, undefined, { signal: options.signal }).catch(() => undefined);
  }
}

/** Scrapes a process's /metrics and returns the value of one series (0 when absent). */
export async function scrapeMetric(
  adminPort: number,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labelText = line.slice(name.length).split('}')[0] ?? '';
    if (wanted.every((w) => labelText.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

/**
 * Resolves once the process's pool holds `count` open connections (concurrent readiness checks make
 * it open them). A scenario that then holds the database's traffic knows each query waits on an open
 * connection for an answer, rather than failing a connect timeout, which reads as an outage.
 */
export async function openPoolConnections(adminPort: number, count: number): Promise<void> {
  const pool = (state: string) => scrapeMetric(adminPort, 'ingesta_db_pool_connections', { state });
  await eventually(`${count} open pool connections`, async () => {
    await Promise.all(Array.from({ length: count * 2 }, () => fetch(`http://127.0.0.1:${adminPort}/readyz`)));
    return (await pool('used')) + (await pool('idle')) >= count ? true : undefined;
  });
}

async function migrated(url: string): Promise<void> {
  const migrator = createDatabase({ url, poolMax: 1, statementTimeoutMs: 10_000, applicationName: 'test' });
  try {
    await migrateLatest(migrator, url);
  } finally {
    await migrator.destroy();
  }
}

/**
 * Backends for one fault scenario: a fresh migrated database (on the machine's PostgreSQL, or a
 * restartable embedded one when `restartablePostgres` is asked for) and the emulator as its own
 * process. The api and consumer run as real processes started by the scenario.
 */
export interface ScenarioOptions {
  /** A PostgreSQL of the scenario's own that it may stop and start (default: a database on the shared one). */
  restartablePostgres?: boolean;
  /** Keep the emulator's state on disk, so that killing and restarting it loses nothing. */
  persistentMessaging?: boolean;
}

export async function startScenario(options: ScenarioOptions = {}): Promise<Scenario> {
  const restartable = options.restartablePostgres ? await startRestartablePostgres() : undefined;
  const testDatabase = restartable ? undefined : await createTestDatabase();
  const databaseUrl = restartable?.url ?? testDatabase?.url ?? '';
  const processes: RunningProcess[] = [];
  const loads: LoadGenerator[] = [];
  let emulator: EmulatorProcess | undefined;
  try {
    await migrated(databaseUrl);
    emulator = await startEmulatorProcess({ persistent: options.persistentMessaging ?? false });
  } catch (err) {
    await restartable?.destroy();
    await testDatabase?.drop();
    throw err;
  }
  const env: Record<string, string> = {
    ...faultEnv,
    AUTH_DISABLED: 'true',
    DATABASE_URL: databaseUrl,
    AWS_REGION: emulator.region,
    AWS_ENDPOINT_URL: emulator.endpoint,
    INGEST_TOPIC_ARN: emulator.topicArn,
    INGEST_QUEUE_URL: emulator.queueUrl,
    INGEST_DLQ_URL: emulator.dlqUrl,
  };
  const db = new pg.Pool({ connectionString: databaseUrl, max: 2, application_name: 'ingesta-faults' });
  db.on('error', () => {}); // idle connections die when a scenario stops PostgreSQL
  const sqs = new SQSClient({
    endpoint: emulator.endpoint,
    region: emulator.region,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const queueUrl = (queue: QueueName) => (queue === 'main' ? env.INGEST_QUEUE_URL : env.INGEST_DLQ_URL) ?? '';

  const storedIds = async (source: string) =>
    (await db.query<{ id: string }>('select id from events where source = $1', [source])).rows.map(
      (r) => r.id,
    );

  const scenario: Scenario = {
    env,
    databaseUrl,
    restartablePostgres: restartable,
    emulator,
    db,
    sqs,
    async startApi(extra = {}) {
      const api = spawnEntry('api', { ...env, ...extra });
      processes.push(api);
      const ready = await api.waitForLog((l) => l.msg === 'api listening');
      return { process: api, baseUrl: `http://127.0.0.1:${ready.port}`, adminPort: Number(ready.adminPort) };
    },
    async startConsumer(extra = {}) {
      const consumer = spawnEntry('consumer', { ...env, ...extra });
      processes.push(consumer);
      const ready = await consumer.waitForLog((l) => l.msg === 'consumer polling');
      return { process: consumer, adminPort: Number(ready.adminPort) };
    },
    startLoad(loadOptions) {
      const load = startLoad(loadOptions);
      loads.push(load);
      return load;
    },
    queueUrl,
    async queueDepth(queue) {
      const { Attributes = {} } = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: queueUrl(queue),
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      return {
        visible: Number(Attributes.ApproximateNumberOfMessages),
        inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible),
      };
    },
    async sendRaw(body, attributes = {}) {
      const { MessageId } = await sqs.send(
        new SendMessageCommand({
          QueueUrl: queueUrl('main'),
          MessageBody: body,
          MessageAttributes: Object.fromEntries(
            Object.entries(attributes).map(([k, v]) => [k, { DataType: 'String', StringValue: v }]),
          ),
        }),
      );
      return MessageId ?? '';
    },
    async peekAll(queue) {
      const seen = new Map<string, Message>();
      for (;;) {
        const { Messages = [] } = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl(queue),
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 0,
            VisibilityTimeout: 30,
            MessageAttributeNames: ['All'],
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          }),
        );
        if (Messages.length === 0) return [...seen.values()];
        for (const m of Messages) seen.set(m.MessageId ?? '', m);
      }
    },
    storedIds,
    async waitForStored(source, count, timeoutMs = 60_000) {
      let stored = 0;
      await eventually(
        `${count} events of ${source} to be stored`,
        async () => {
          const { rows } = await db.query<{ n: string }>(
            'select count(*) as n from events where source = $1',
            [source],
          );
          stored = Number(rows[0]?.n);
          return stored >= count ? true : undefined;
        },
        { timeoutMs, intervalMs: 250 },
      ).catch((err: Error) => {
        throw new Error(`${err.message} (${stored} stored)`, { cause: err });
      });
    },
    async reconcile(source, accepted) {
      const acceptedIds = new Set(accepted);
      const stored = await storedIds(source);
      const storedSet = new Set(stored);
      const missing = [...acceptedIds].filter((id) => !storedSet.has(id));
      const unexpected = stored.filter((id) => !acceptedIds.has(id));
      assert.deepEqual(missing, [], 'every accepted event is stored');
      assert.deepEqual(unexpected, [], 'nothing is stored that was not accepted');
      assert.equal(stored.length, storedSet.size, 'nothing is stored twice');
      const { rows } = await db.query<{ bucket_width: string; total: string }>(
        `select bucket_width, sum(c) as total from event_counts_by_source, unnest(counts) as c where source = $1 group by bucket_width`,
        [source],
      );
      const rollups = Object.fromEntries(rows.map((r) => [r.bucket_width, Number(r.total)]));
      assert.deepEqual(
        rollups,
        { minute: acceptedIds.size, hour: acceptedIds.size, day: acceptedIds.size },
        'the rollups count each stored event once',
      );
    },
    dumpLogs() {
      for (const [index, p] of processes.entries()) {
        const lines = [...p.logs.slice(-25).map((l) => JSON.stringify(l)), ...p.stderr.slice(-10)];
        process.stderr.write(
          `--- process ${index} (pid ${p.child.pid}, exit ${p.child.exitCode ?? p.child.signalCode})\n${lines.join('\n')}\n`,
        );
      }
    },
    async close() {
      for (const load of loads) load.abort();
      await Promise.all(processes.map((p) => p.stop('SIGKILL')));
      sqs.destroy();
      await db.end().catch(() => undefined);
      await emulator?.destroy();
      await restartable?.destroy();
      await testDatabase?.drop();
    },
  };
  return scenario;
}

/**
 * Runs a scenario body with its backends, always cleaning up; when the body fails, the last log
 * lines of every process it started go to stderr so the failure can be read.
 */
export async function withScenario(
  options: ScenarioOptions,
  body: (scenario: Scenario) => Promise<void>,
): Promise<void> {
  const scenario = await startScenario(options);
  try {
    await body(scenario);
  } catch (err) {
    scenario.dumpLogs();
    throw err;
  } finally {
    await scenario.close();
  }
}
