/** B2 batch ingest: POST /v1/events with batches of 100, against bare Express baselines. */
import { ingestFigures } from './ingest.ts';
import { createBenchDatabase, startEmulator } from './support/backends.ts';
import { type Benchmark, runBenchmarks } from './support/harness.ts';
import { runIngest } from './support/ingest-run.ts';

const connections = 8;
const batchSize = 100;

export const batchIngestBenchmark: Benchmark = {
  name: 'batch-ingest',
  title: `B2 batch ingest: batches of ${batchSize}, ${connections} connections`,
  async run(context) {
    const database = await createBenchDatabase(context.server);
    const emulator = await startEmulator();
    try {
      const runs = await runIngest(context, {
        targets: [
          { name: 'bare', kind: 'bare' },
          { name: 'bare+publish', kind: 'bare+publish' },
          { name: 'api', kind: 'api' },
        ],
        database,
        emulator,
        eventsPerRequest: batchSize,
        connections,
      });
      return ingestFigures('B2 batch ingest', runs, 'events/s');
    } finally {
      await emulator.stop();
      await database.drop();
    }
  },
};

if (import.meta.main) await runBenchmarks([batchIngestBenchmark]);
