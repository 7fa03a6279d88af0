/**
 * B5 freshness: accepted → queryable at a steady request rate through the whole pipeline (API,
 * emulator, consumer, PostgreSQL). Every stored row carries accepted_at (the API's clock at receipt)
 * and stored_at (the database's clock in the INSERT), on one machine: their difference per event is
 * the pipeline's latency, measured for every event rather than sampled.
 */
import { createBenchDatabase, serviceEnv, startEmulator } from './support/backends.ts';
import { type Benchmark, runBenchmarks } from './support/harness.ts';
import { runIngest } from './support/ingest-run.ts';
import { spawnService } from './support/processes.ts';

const eventsPerSec = 500;

export const freshnessBenchmark: Benchmark = {
  name: 'freshness',
  title: `B5 freshness: accepted → queryable at ${eventsPerSec} events/s`,
  async run(context) {
    const database = await createBenchDatabase(context.server);
    const emulator = await startEmulator();
    const consumer = await spawnService('consumer', serviceEnv(database, emulator));
    try {
      const runs = await runIngest(context, {
        targets: [{ name: 'api', kind: 'api' }],
        database,
        emulator,
        eventsPerRequest: 1,
        connections: 16,
        overallRate: eventsPerSec,
        purge: false,
        rounds: 1,
        measureSec: context.quick ? 4 : 30,
      });
      const run = runs.get('api');
      if (!run) throw new Error('no API run');
      // Everything accepted must arrive; wait for it (bounded) before reading the latencies.
      const [accepted] = await database.query<{ n: string }>('select count(*) as n from events');
      const deadline = Date.now() + 60_000;
      let stored = Number(accepted?.n ?? 0);
      while (stored < run.okTotal) {
        if (Date.now() > deadline)
          throw new Error(`only ${stored} of ${run.okTotal} accepted events were stored`);
        await new Promise((resolve) => setTimeout(resolve, 100));
        const [row] = await database.query<{ n: string }>('select count(*) as n from events');
        stored = Number(row?.n ?? 0);
      }
      const [latency] = await database.query<{ p50: number; p99: number; max: number }>(
        `select percentile_cont(0.5) within group (order by ms) as p50,
                percentile_cont(0.99) within group (order by ms) as p99,
                max(ms) as max
         from (select extract(epoch from stored_at - accepted_at) * 1000 as ms from events) as t`,
      );
      const p50 = Number(latency?.p50);
      const p99 = Number(latency?.p99);
      context.progress(
        `  ${stored} events at ${Math.round(run.okPerSec)}/s: p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms, max ${Number(latency?.max).toFixed(0)} ms`,
      );
      const benchmark = 'B5 freshness';
      const note = `${stored.toLocaleString('en-US')} events at ${Math.round(run.okPerSec)}/s`;
      return [
        { benchmark, name: 'accepted → queryable, p50', unit: 'ms', value: p50, note },
        {
          benchmark,
          name: 'accepted → queryable, p99',
          unit: 'ms',
          value: p99,
          goal: { text: 'p99 < 1 s', met: p99 < 1_000 },
          note,
        },
        {
          benchmark,
          name: 'API errors + non-2xx at a steady rate',
          unit: '',
          value: run.errors + run.non2xx,
          goal: { text: 'zero errors', met: run.errors + run.non2xx === 0 },
        },
      ];
    } finally {
      await consumer.stop();
      await emulator.stop();
      await database.drop();
    }
  },
};

if (import.meta.main) await runBenchmarks([freshnessBenchmark]);
