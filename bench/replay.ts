/**
 * B7 replay: events a second a replay sends from the store to an SQS queue (the emulator), against
 * a bare loop that reads the same rows with one SELECT and sends them with SendMessageBatch, one
 * call after another, as a hand-written backfill script would. Both run in this process, on the
 * same rows, the bare loop first and again last (its better run counts).
 */
import { CreateQueueCommand, PurgeQueueCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { createDatabase } from '../db/database.ts';
import { EventRepository } from '../db/event-repository.ts';
import { acceptEvent } from '../ingest/contract.ts';
import { fromEpoch } from '../ingest/timestamp.ts';
import { createSnsClient } from '../platform/aws.ts';
import { ReplayStore } from '../replay/store.ts';
import { createReplayer } from '../replay/worker.ts';
import { createBenchDatabase, startEmulator } from './support/backends.ts';
import { createOrderEvents, runPrefix } from './support/events.ts';
import { type Benchmark, compare, runBenchmarks } from './support/harness.ts';
import { sqsFor } from './support/queue.ts';

export const replayBenchmark: Benchmark = {
  name: 'replay',
  title: 'B7 replay: store to SQS, against a bare SELECT + SendMessageBatch loop',
  async run(context) {
    const count = context.quick ? 2_000 : 20_000;
    const database = await createBenchDatabase(context.server);
    const emulator = await startEmulator();
    const db = createDatabase({
      url: database.url,
      poolMax: 4,
      statementTimeoutMs: 60_000,
      applicationName: 'ingesta-bench',
    });
    const aws = { region: emulator.region, endpointUrl: emulator.endpoint };
    const sqs = sqsFor(emulator);
    const sns = createSnsClient(aws);
    try {
      context.progress(`storing ${count} events`);
      const repository = new EventRepository(db);
      const next = createOrderEvents(runPrefix('replay'));
      for (let i = 0; i < count; i += 100) {
        await repository.insertBatch(
          Array.from({ length: Math.min(100, count - i) }, () => {
            const acceptedAtMs = Date.now();
            return {
              event: acceptEvent(next()),
              time: fromEpoch(acceptedAtMs),
              timeDefaulted: true,
              acceptedAtMs,
            };
          }),
        );
      }
      const { QueueUrl: target } = await sqs.send(new CreateQueueCommand({ QueueName: 'bench-replay' }));
      const purge = () => sqs.send(new PurgeQueueCommand({ QueueUrl: target }));

      const bare = async () => {
        await purge();
        const t0 = performance.now();
        const rows = await database.query<{ event: string }>('select event from events order by seq');
        for (let i = 0; i < rows.length; i += 10) {
          const { Failed = [] } = await sqs.send(
            new SendMessageBatchCommand({
              QueueUrl: target,
              Entries: rows.slice(i, i + 10).map((r, j) => ({ Id: String(j), MessageBody: r.event })),
            }),
          );
          if (Failed.length > 0) throw new Error('bare loop: the queue refused entries');
        }
        return rows.length / ((performance.now() - t0) / 1000);
      };

      context.progress('bare SELECT + SendMessageBatch loop');
      const bareFirst = await bare();
      context.progress('replay');
      await purge();
      const store = new ReplayStore(db);
      const replayer = createReplayer({ store, sqs, sns, log: silentLog, idleMs: 20 });
      const t0 = performance.now();
      const replay = await store.create({
        filter: {},
        target: target as string,
        ratePerSec: 100_000,
        follow: false,
        eventsMatched: count,
      });
      replayer.start();
      for (;;) {
        const state = (await store.get(replay.id))?.state;
        if (state === 'done') break;
        if (state !== 'running') throw new Error(`replay ended ${state}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const replayRate = count / ((performance.now() - t0) / 1000);
      await replayer.stop();
      context.progress('bare loop again');
      const bareRate = Math.max(bareFirst, await bare());
      return [
        compare(
          {
            benchmark: 'B7',
            name: 'replay to SQS',
            unit: 'events/s',
            value: replayRate,
            note: `${count} events, one replay`,
          },
          { name: 'bare SELECT + SendMessageBatch loop', value: bareRate },
        ),
      ];
    } finally {
      sqs.destroy();
      sns.destroy();
      await db.destroy();
      await emulator.stop();
      await database.drop();
    }
  },
};

const silentLog = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Parameters<
  typeof createReplayer
>[0]['log'];

if (import.meta.main) await runBenchmarks([replayBenchmark]);
