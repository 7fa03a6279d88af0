/**
 * B6 telemetry cost: B1's load on the API with tracing (OTLP export to a local sink that discards)
 * and periodic /metrics scrapes, against the same API with tracing off and no scrapes.
 */
import { createBenchDatabase, startEmulator } from './support/backends.ts';
import { type Benchmark, compare, runBenchmarks } from './support/harness.ts';
import { cpuPerRequestUs, runIngest } from './support/ingest-run.ts';
import { scrape } from './support/metrics.ts';
import { startOtlpSink } from './support/otlp-sink.ts';

const connections = 32;

export const telemetryBenchmark: Benchmark = {
  name: 'telemetry',
  title: `B6 telemetry cost: B1 with tracing and metrics on vs off`,
  async run(context) {
    const database = await createBenchDatabase(context.server);
    const emulator = await startEmulator();
    const sink = await startOtlpSink();
    try {
      const runs = await runIngest(context, {
        targets: [
          { name: 'tracing off', kind: 'api', apiEnv: { OTEL_SDK_DISABLED: 'true' } },
          {
            name: 'tracing on',
            kind: 'api',
            apiEnv: {
              OTEL_TRACES_EXPORTER: 'otlp',
              OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint,
              OTEL_SERVICE_NAME: 'ingesta-api',
            },
            // A Prometheus scrape every 5 s (production scrapes every 15-30 s).
            during: async (api) => {
              await scrape(Number(api.ready.adminPort));
            },
          },
          {
            name: 'tracing on, 10 % sampled',
            kind: 'api',
            apiEnv: {
              OTEL_TRACES_EXPORTER: 'otlp',
              OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint,
              OTEL_SERVICE_NAME: 'ingesta-api',
              OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
              OTEL_TRACES_SAMPLER_ARG: '0.1',
            },
            during: async (api) => {
              await scrape(Number(api.ready.adminPort));
            },
          },
        ],
        database,
        emulator,
        eventsPerRequest: 1,
        connections,
      });
      const off = runs.get('tracing off');
      const on = runs.get('tracing on');
      const sampled = runs.get('tracing on, 10 % sampled');
      if (!off || !on || !sampled) throw new Error('missing telemetry runs');
      context.progress(`  OTLP sink received ${sink.requests()} export requests`);
      if (sink.requests() === 0) throw new Error('tracing was on but no span reached the OTLP sink');
      const benchmark = 'B6 telemetry cost';
      return [
        compare(
          { benchmark, name: 'API throughput, tracing + metrics on', unit: 'req/s', value: on.okPerSec },
          { name: 'tracing off', value: off.okPerSec },
          (r) => ({ text: 'ratio ≥ 0.85', met: r >= 0.85 }),
        ),
        compare(
          {
            benchmark,
            name: 'API throughput, 10 % of traces sampled',
            unit: 'req/s',
            value: sampled.okPerSec,
          },
          { name: 'tracing off', value: off.okPerSec },
        ),
        compare(
          { benchmark, name: 'API p99, tracing + metrics on', unit: 'ms', value: on.p99Ms },
          { name: 'tracing off', value: off.p99Ms },
        ),
        // Less noisy than throughput: what the API process itself spent per request in its best round.
        compare(
          {
            benchmark,
            name: 'API CPU per request, tracing + metrics on',
            unit: 'µs',
            value: cpuPerRequestUs(on),
          },
          { name: 'tracing off', value: cpuPerRequestUs(off) },
        ),
        compare(
          { benchmark, name: 'API peak RSS, tracing on', unit: 'MiB', value: on.peakRssBytes / 2 ** 20 },
          { name: 'tracing off', value: off.peakRssBytes / 2 ** 20 },
        ),
      ];
    } finally {
      await sink.stop();
      await emulator.stop();
      await database.drop();
    }
  },
};

if (import.meta.main) await runBenchmarks([telemetryBenchmark]);
