/** B1 ingest: POST /v1/events with single events, fixed concurrency, against bare Express baselines. */
import { createBenchDatabase, startEmulator } from './support/backends.ts';
import { type Benchmark, compare, type Figure, runBenchmarks } from './support/harness.ts';
import { cpuPerRequestUs, type IngestRun, runIngest } from './support/ingest-run.ts';

const connections = 32;

export const ingestBenchmark: Benchmark = {
  name: 'ingest',
  title: `B1 ingest: single events, ${connections} connections`,
  async run(context) {
    const database = await createBenchDatabase(context.server);
    const emulator = await startEmulator();
    try {
      const runs = await runIngest(context, {
        targets: [
          { name: 'bare', kind: 'bare' },
          { name: 'bare+publish', kind: 'bare+publish' },
          { name: 'api', kind: 'api' },
          { name: 'api, publishing skipped', kind: 'api-unpublished' },
        ],
        database,
        emulator,
        eventsPerRequest: 1,
        connections,
      });
      return [...ingestFigures('B1 ingest', runs, 'req/s', 0.6), ...ceilingFigures('B1 ingest', runs)];
    } finally {
      await emulator.stop();
      await database.drop();
    }
  },
};

function runOf(runs: Map<string, IngestRun>, name: string): IngestRun {
  const run = runs.get(name);
  if (!run) throw new Error(`no run for ${name}`);
  return run;
}

/**
 * How far the API could come with publishing free: the same API with a publisher that accepts at
 * once, against the bare route, and where the API's CPU per request goes.
 */
function ceilingFigures(benchmark: string, runs: Map<string, IngestRun>): Figure[] {
  const [api, unpublished, bare] = [
    runOf(runs, 'api'),
    runOf(runs, 'api, publishing skipped'),
    runOf(runs, 'bare'),
  ];
  return [
    compare(
      {
        benchmark,
        name: 'API throughput, publishing skipped',
        unit: 'req/s',
        value: unpublished.okPerSec,
        // Only 2xx answers count, so refused requests would show as a lower ceiling, not a higher one.
        note: `${unpublished.errors + unpublished.non2xx} errors + non-2xx`,
      },
      { name: 'bare route', value: bare.okPerSec },
    ),
    compare(
      { benchmark, name: 'API CPU per request', unit: 'µs', value: cpuPerRequestUs(api) },
      { name: 'API, publishing skipped', value: cpuPerRequestUs(unpublished) },
    ),
    compare(
      {
        benchmark,
        name: 'API CPU per request, publishing skipped',
        unit: 'µs',
        value: cpuPerRequestUs(unpublished),
      },
      { name: 'bare route', value: cpuPerRequestUs(bare) },
    ),
  ];
}

/** The figures B1 and B2 share: throughput and latency beside both baselines, errors, RSS, emulator CPU. */
export function ingestFigures(
  benchmark: string,
  runs: Map<string, IngestRun>,
  unit: 'req/s' | 'events/s',
  /** The throughput goal against the bare route, when the benchmark has one. */
  goalRatio?: number,
): Figure[] {
  const [api, bare, publish] = [runOf(runs, 'api'), runOf(runs, 'bare'), runOf(runs, 'bare+publish')];
  const rate = (r: IngestRun) => (unit === 'req/s' ? r.okPerSec : r.eventsPerSec);
  const cpuShare = (r: IngestRun) => (100 * r.cpuSec.emulator) / r.durationSec;
  return [
    compare(
      { benchmark, name: 'API throughput', unit, value: rate(api) },
      { name: 'bare route', value: rate(bare) },
      goalRatio === undefined ? undefined : (r) => ({ text: `ratio ≥ ${goalRatio}`, met: r >= goalRatio }),
    ),
    compare(
      { benchmark, name: 'API throughput', unit, value: rate(api) },
      { name: 'bare route + SNS publish', value: rate(publish) },
    ),
    compare(
      { benchmark, name: 'API p50', unit: 'ms', value: api.p50Ms },
      { name: 'bare route', value: bare.p50Ms },
    ),
    compare(
      { benchmark, name: 'API p99', unit: 'ms', value: api.p99Ms },
      { name: 'bare route', value: bare.p99Ms },
    ),
    compare(
      { benchmark, name: 'API p99', unit: 'ms', value: api.p99Ms },
      { name: 'bare route + SNS publish', value: publish.p99Ms },
    ),
    {
      benchmark,
      name: 'API errors + non-2xx',
      unit: '',
      value: api.errors + api.non2xx,
      goal: { text: 'zero errors', met: api.errors + api.non2xx === 0 },
    },
    { benchmark, name: 'API peak RSS', unit: 'MiB', value: api.peakRssBytes / 2 ** 20 },
    compare(
      { benchmark, name: 'emulator CPU during API run', unit: '% core', value: cpuShare(api) },
      { name: 'bare route + SNS publish', value: cpuShare(publish) },
    ),
  ];
}

if (import.meta.main) await runBenchmarks([ingestBenchmark]);
