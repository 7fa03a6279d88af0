/** B2 batch ingest: POST /v1/events with batches of 100, against bare Express baselines. */
import { ingestFigures } from './ingest.ts';
import { createBenchDatabase, startEmulator } from './support/backends.ts';
import { type Benchmark, runBenchmarks } from './support/harness.ts';
import { type IngestRun, runIngest } from './support/ingest-run.ts';

const connections = 8;
const batchSize = 100;

export const batchIngestBenchmark: Benchmark = {
  name: 'batch-ingest',
  title: `B2 batch ingest: batches of ${batchSize}, ${connections} connections`,
  async run(context) {
    const database = await createBenchDatabase(context.server);
    const emulator = await startEmulator();
    try {
      const runs: Record<string, IngestRun> = {};
      for (const target of ['bare', 'bare+publish', 'api'] as const) {
        runs[target] = await runIngest(context, {
          target,
          database,
          emulator,
          eventsPerRequest: batchSize,
          connections,
        });
      }
      return ingestFigures(
        'B2 batch ingest',
        runs as Record<'bare' | 'bare+publish' | 'api', IngestRun>,
        'events/s',
      );
    } finally {
      await emulator.stop();
      await database.drop();
    }
  },
};

if (import.meta.main) await runBenchmarks([batchIngestBenchmark]);
