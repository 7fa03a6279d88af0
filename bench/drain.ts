/**
 * B3 consumer drain: N messages waiting in the queue, time until every one is stored. Baselines: a
 * raw multi-row INSERT of the same rows through `pg` with the same batch size and concurrency; the
 * same plus the SQS receive and delete a correct consumer cannot skip, through the SDK; and that
 * loop with the SQS calls made by hand: what a consumer stores once the SDK's cost is gone.
 */
import {
  CreateQueueCommand,
  ReceiveMessageCommand,
  type ReceiveMessageCommandInput,
} from '@aws-sdk/client-sqs';
import pg from 'pg';
import { createDatabase } from '../db/database.ts';
import { EventRepository } from '../db/event-repository.ts';
import { acceptEvent } from '../ingest/contract.ts';
import { fromEpoch } from '../ingest/timestamp.ts';
import { createSqsByHand } from './support/aws-by-hand.ts';
import {
  type BenchDatabase,
  createBenchDatabase,
  type Emulator,
  serviceEnv,
  startEmulator,
} from './support/backends.ts';
import { createOrderEvents, runPrefix } from './support/events.ts';
import { type BenchContext, type Benchmark, compare, type Figure, runBenchmarks } from './support/harness.ts';
import { scrape } from './support/metrics.ts';
import { spawnService } from './support/processes.ts';
import { deleteReceived, loops, preload, sqsFor } from './support/queue.ts';

/**
 * CONSUMER_BATCH_SIZE's default, and the poller counts compared: 2 (CONSUMER_POLLERS' default) and 10
 * (DATABASE_POOL_MAX's default: pollers sized to the pool). Baselines run at the same concurrency.
 * BENCH_CONSUMER_POLLERS (e.g. "4" or "2,4,10") and BENCH_DRAIN_MESSAGES override them.
 */
const batchSize = 10;
const pollerCounts = (process.env.BENCH_CONSUMER_POLLERS ?? '2,10').split(',').map(Number);

async function createQueue(emulator: Emulator, name: string): Promise<string> {
  const sqs = sqsFor(emulator);
  try {
    const { QueueUrl } = await sqs.send(
      new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: '60' } }),
    );
    if (!QueueUrl) throw new Error(`the emulator did not create ${name}`);
    return QueueUrl;
  } finally {
    sqs.destroy();
  }
}

const insertColumns = '(source, id, type, subject, time, event, accepted_at)';

/** A plain multi-row INSERT of parsed events: the floor any storage path pays. */
function rawInsert(pool: pg.Pool, bodies: string[], acceptedAtMs: number[]) {
  const values: unknown[] = [];
  const rows = bodies.map((body, r) => {
    const e = JSON.parse(body) as Record<string, unknown>;
    values.push(e.source, e.id, e.type, e.subject, e.time, body, new Date(acceptedAtMs[r] as number));
    const b = r * 7;
    return `($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6}, $${b + 7})`;
  });
  return pool.query(`insert into events ${insertColumns} values ${rows.join(', ')}`, values);
}

async function countEvents(database: BenchDatabase): Promise<number> {
  const [row] = await database.query<{ n: string }>('select count(*) as n from events');
  return Number(row?.n ?? 0);
}

/** ingesta_events_stored_total{outcome="inserted"} of a consumer. */
async function storedByConsumer(adminPort: number): Promise<number> {
  const text = await scrape(adminPort);
  const value = /^ingesta_events_stored_total\{[^}]*outcome="inserted"[^}]*\} (\d+)/m.exec(text)?.[1];
  return Number(value ?? 0);
}

async function reset(database: BenchDatabase) {
  await database.query('truncate events, event_keys, event_counts, event_counts_by_source');
}

/** Baseline 1: rows inserted straight from memory, `pollers` loops of `batchSize`-row INSERTs. */
async function baselineInsert(
  database: BenchDatabase,
  count: number,
  prefix: string,
  pollers: number,
): Promise<number> {
  const next = createOrderEvents(prefix);
  const bodies = Array.from({ length: count }, () =>
    JSON.stringify({ ...next(), time: new Date().toISOString() }),
  );
  const pool = new pg.Pool({ connectionString: database.url, max: pollers });
  let cursor = 0;
  const t0 = performance.now();
  try {
    await loops(pollers, async () => {
      if (cursor >= count) return false;
      const chunk = bodies.slice(cursor, cursor + batchSize);
      cursor += chunk.length;
      await rawInsert(
        pool,
        chunk,
        chunk.map(() => Date.now()),
      );
      return true;
    });
  } finally {
    await pool.end();
  }
  return (count / (performance.now() - t0)) * 1000;
}

/** The consumer's own statement (EventRepository.insertBatch: unnest, ON CONFLICT, rollups) from memory. */
async function repositoryInsert(
  database: BenchDatabase,
  count: number,
  prefix: string,
  pollers: number,
): Promise<number> {
  const next = createOrderEvents(prefix);
  const events = Array.from({ length: count }, () => {
    const acceptedAtMs = Date.now();
    return { event: acceptEvent(next()), time: fromEpoch(acceptedAtMs), timeDefaulted: true, acceptedAtMs };
  });
  const db = createDatabase({
    url: database.url,
    poolMax: pollers,
    statementTimeoutMs: 60_000,
    applicationName: 'ingesta-bench',
  });
  const repository = new EventRepository(db);
  let cursor = 0;
  const t0 = performance.now();
  try {
    await loops(pollers, async () => {
      if (cursor >= count) return false;
      const chunk = events.slice(cursor, cursor + batchSize);
      cursor += chunk.length;
      await repository.insertBatch(chunk);
      return true;
    });
  } finally {
    await db.destroy();
  }
  return (count / (performance.now() - t0)) * 1000;
}

/** A received message as the queue baselines need it. */
interface Received {
  body: string;
  acceptedAtMs: number;
  receiptHandle: string;
}

/** The two calls the queue baselines make, through the SDK or by hand. */
interface BaselineQueue {
  receive(): Promise<Received[]>;
  delete(messages: Received[]): Promise<void>;
  destroy(): void;
}

const acceptedAtMs = (attributes?: Record<string, { StringValue?: string }>) =>
  Number(attributes?.ingesta_accepted_at?.StringValue ?? Date.now());

/** The receive both queue baselines make: a batch, a short long poll, the attributes. */
const receiveInput = (queueUrl: string): ReceiveMessageCommandInput => ({
  QueueUrl: queueUrl,
  MaxNumberOfMessages: batchSize,
  WaitTimeSeconds: 1,
  MessageAttributeNames: ['All'],
});

/** The queue through the SDK, as a consumer written without ingesta would call it. */
function sdkQueue(emulator: Emulator, queueUrl: string): BaselineQueue {
  const sqs = sqsFor(emulator);
  return {
    async receive() {
      const { Messages = [] } = await sqs.send(new ReceiveMessageCommand(receiveInput(queueUrl)));
      return Messages.map((m) => ({
        body: m.Body ?? '{}',
        acceptedAtMs: acceptedAtMs(m.MessageAttributes),
        receiptHandle: m.ReceiptHandle ?? '',
      }));
    },
    delete: (messages) =>
      deleteReceived(
        sqs,
        queueUrl,
        messages.map((m) => m.receiptHandle),
      ),
    destroy: () => sqs.destroy(),
  };
}

/** The same two calls by hand (signed, no SDK): the queue's cost without the SDK's own work. */
function byHandQueue(emulator: Emulator, queueUrl: string): BaselineQueue {
  const sqs = createSqsByHand(emulator);
  return {
    async receive() {
      const messages = await sqs.receive(receiveInput(queueUrl));
      return messages.map((m) => ({
        body: m.Body,
        acceptedAtMs: acceptedAtMs(m.MessageAttributes),
        receiptHandle: m.ReceiptHandle,
      }));
    },
    delete: (messages) =>
      sqs.deleteBatch(
        queueUrl,
        messages.map((m) => m.receiptHandle),
      ),
    destroy: () => sqs.destroy(),
  };
}

/** Baselines 2 and 3: the same INSERTs fed by SQS receive and delete, the least a queue consumer does. */
async function baselineQueueInsert(
  database: BenchDatabase,
  queue: BaselineQueue,
  count: number,
  pollers: number,
): Promise<number> {
  const pool = new pg.Pool({ connectionString: database.url, max: pollers });
  let stored = 0;
  const t0 = performance.now();
  try {
    await loops(pollers, async () => {
      if (stored >= count) return false;
      const messages = await queue.receive();
      if (messages.length === 0) return stored < count;
      await rawInsert(
        pool,
        messages.map((m) => m.body),
        messages.map((m) => m.acceptedAtMs),
      );
      await queue.delete(messages);
      stored += messages.length;
      return true;
    });
  } finally {
    queue.destroy();
    await pool.end();
  }
  return (count / (performance.now() - t0)) * 1000;
}

/**
 * One drain at one poller count: the baselines from memory and both queue baselines, the consumer,
 * then every baseline again, each keeping its better run.
 */
async function drainAt(
  context: BenchContext,
  database: BenchDatabase,
  emulator: Emulator,
  count: number,
  pollers: number,
): Promise<Figure[]> {
  const prefix = runPrefix(`drain-${pollers}`);
  context.progress(`  ${pollers} pollers: raw INSERT and insertBatch baselines, ${count} rows`);
  let insertRate = await baselineInsert(database, count, `${prefix}-raw`, pollers);
  await reset(database);
  let repositoryRate = await repositoryInsert(database, count, `${prefix}-repository`, pollers);
  await reset(database);

  /** One run of a queue baseline over `count` fresh messages: rows/s, and the pre-load's messages/s. */
  const queueBaseline = async (client: 'sdk' | 'by-hand', run: number) => {
    context.progress(
      `  ${pollers} pollers: pre-loading ${count} messages, SQS (${client}) + raw INSERT baseline`,
    );
    // A fresh queue per phase: an aborted long poll of an earlier phase can still take messages from
    // a reused queue and hide them for a visibility timeout.
    const queueUrl = await createQueue(emulator, `${prefix}-${client}-${run}`);
    const preloadRate = await preload(emulator, queueUrl, count, `${prefix}-${client}-${run}`);
    const queue = client === 'sdk' ? sdkQueue(emulator, queueUrl) : byHandQueue(emulator, queueUrl);
    const rate = await baselineQueueInsert(database, queue, count, pollers);
    await reset(database);
    return { rate, preloadRate };
  };
  const firstSdkRun = await queueBaseline('sdk', 1);
  const preloadRate = firstSdkRun.preloadRate;
  let queueInsertRate = firstSdkRun.rate;
  let byHandInsertRate = (await queueBaseline('by-hand', 1)).rate;

  context.progress(`  ${pollers} pollers: pre-loading ${count} messages, consumer`);
  const consumerQueue = await createQueue(emulator, `${prefix}-consumer`);
  await preload(emulator, consumerQueue, count, `${prefix}-consumer`);
  const consumer = await spawnService('consumer', {
    ...serviceEnv(database, emulator),
    INGEST_QUEUE_URL: consumerQueue,
    CONSUMER_POLLERS: String(pollers),
    CONSUMER_BATCH_SIZE: String(batchSize),
    DATABASE_POOL_MAX: String(Math.max(10, pollers)),
  });
  const emulatorCpu0 = emulator.cpuSec();
  const consumerCpu0 = consumer.cpuSec(); // boot (module loading) is not drain work
  const t0 = performance.now();
  let consumerRate: number;
  let peakRss: number;
  let cpu: { consumer: number; emulator: number };
  try {
    // Progress from the consumer's own counter: a count(*) every 100 ms would cost the database
    // more than the scrape costs the consumer.
    const adminPort = Number(consumer.ready.adminPort);
    const deadline = Date.now() + (context.quick ? 60_000 : 600_000);
    while ((await storedByConsumer(adminPort)) < count) {
      if (Date.now() > deadline) throw new Error('the consumer did not drain the queue in time');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const elapsedMs = performance.now() - t0;
    const stored = await countEvents(database);
    if (stored !== count)
      throw new Error(`the consumer reported ${count} stored but the table holds ${stored}`);
    consumerRate = (count / elapsedMs) * 1000;
    peakRss = consumer.peakRssBytes();
    cpu = { consumer: consumer.cpuSec() - consumerCpu0, emulator: emulator.cpuSec() - emulatorCpu0 };
  } finally {
    await consumer.stop();
  }
  // Every baseline again, after the consumer, each keeping its better run: a spell of noise during
  // one run can neither flatter the consumer's ratios nor understate the by-hand loop.
  await reset(database);
  byHandInsertRate = Math.max(byHandInsertRate, (await queueBaseline('by-hand', 2)).rate);
  queueInsertRate = Math.max(queueInsertRate, (await queueBaseline('sdk', 2)).rate);
  insertRate = Math.max(insertRate, await baselineInsert(database, count, `${prefix}-raw2`, pollers));
  await reset(database);
  repositoryRate = Math.max(
    repositoryRate,
    await repositoryInsert(database, count, `${prefix}-repository2`, pollers),
  );
  await reset(database);
  const durationSec = count / consumerRate;
  context.progress(
    `  ${pollers} pollers: consumer ${Math.round(consumerRate)} rows/s (raw INSERT ${Math.round(insertRate)}, ` +
      `insertBatch ${Math.round(repositoryRate)}, SQS + INSERT ${Math.round(queueInsertRate)}, ` +
      `SQS by hand + INSERT ${Math.round(byHandInsertRate)}, ` +
      `pre-load ${Math.round(preloadRate)} msg/s); CPU ${cpu.consumer.toFixed(1)} s, ` +
      `emulator ${cpu.emulator.toFixed(1)} s in ${durationSec.toFixed(1)} s`,
  );
  const benchmark = 'B3 consumer drain';
  const name = `consumer, ${pollers} pollers, ${count.toLocaleString('en-US')} messages`;
  return [
    compare(
      { benchmark, name, unit: 'rows/s', value: consumerRate },
      { name: 'raw multi-row INSERT', value: insertRate },
      (r) => ({ text: 'ratio ≥ 0.6', met: r >= 0.6 }),
    ),
    compare(
      { benchmark, name, unit: 'rows/s', value: consumerRate },
      { name: 'SQS receive/delete + raw INSERT', value: queueInsertRate },
    ),
    compare(
      {
        benchmark,
        name: `SQS receive/delete by hand + raw INSERT, ${pollers} loops`,
        unit: 'rows/s',
        value: byHandInsertRate,
      },
      { name: 'raw multi-row INSERT', value: insertRate },
    ),
    compare(
      {
        benchmark,
        name: `EventRepository.insertBatch alone, ${pollers} connections`,
        unit: 'rows/s',
        value: repositoryRate,
      },
      { name: 'raw multi-row INSERT', value: insertRate },
    ),
    { benchmark, name: `consumer peak RSS, ${pollers} pollers`, unit: 'MiB', value: peakRss / 2 ** 20 },
    {
      benchmark,
      name: `consumer CPU, ${pollers} pollers`,
      unit: '% core',
      value: (100 * cpu.consumer) / durationSec,
      note: `emulator ${((100 * cpu.emulator) / durationSec).toFixed(0)} % core`,
    },
  ];
}

export const drainBenchmark: Benchmark = {
  name: 'drain',
  title: `B3 consumer drain: batches of ${batchSize}, ${pollerCounts.join(' and ')} pollers`,
  async run(context) {
    const count = Number(process.env.BENCH_DRAIN_MESSAGES ?? (context.quick ? 5_000 : 100_000));
    const database = await createBenchDatabase(context.server);
    const emulator = await startEmulator();
    try {
      const figures: Figure[] = [];
      for (const pollers of pollerCounts)
        figures.push(...(await drainAt(context, database, emulator, count, pollers)));
      return figures;
    } finally {
      await emulator.stop();
      await database.drop();
    }
  },
};

if (import.meta.main) await runBenchmarks([drainBenchmark]);
