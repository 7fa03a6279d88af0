/**
 * `npm run bench [-- --quick]`: every benchmark, one after another, against one database server.
 * Each is also runnable alone: `node bench/<name>.ts [--quick]`.
 */
import { awsCallsBenchmark } from './aws-calls.ts';
import { batchIngestBenchmark } from './batch-ingest.ts';
import { drainBenchmark } from './drain.ts';
import { freshnessBenchmark } from './freshness.ts';
import { ingestBenchmark } from './ingest.ts';
import { queriesBenchmark } from './queries.ts';
import { replayBenchmark } from './replay.ts';
import { runBenchmarks } from './support/harness.ts';
import { telemetryBenchmark } from './telemetry.ts';

await runBenchmarks([
  ingestBenchmark,
  batchIngestBenchmark,
  drainBenchmark,
  queriesBenchmark,
  freshnessBenchmark,
  telemetryBenchmark,
  awsCallsBenchmark,
  replayBenchmark,
]);
