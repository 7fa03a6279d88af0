import type { BenchDatabase, Emulator } from './backends.ts';
import { serviceEnv } from './backends.ts';
import { createOrderEvents, runPrefix } from './events.ts';
import type { BenchContext } from './harness.ts';
import { type LoadOptions, type LoadResult, runLoad } from './load.ts';
import { type BenchProcess, spawnNode, spawnService } from './processes.ts';
import { purgeQueue } from './queue.ts';

/**
 * What receives the load: a bare Express route, the same plus an SNS publish, the real API, or the
 * real API with a publisher that accepts at once (its ceiling without SNS).
 */
export type IngestKind = 'bare' | 'bare+publish' | 'api' | 'api-unpublished';

export interface IngestTarget {
  /** A label for the report (e.g. "api" or "api, tracing on"). */
  name: string;
  kind: IngestKind;
  /** Extra environment for the API (telemetry settings). */
  apiEnv?: Record<string, string>;
  /** Called every 5 s while this target is loaded (e.g. a /metrics scrape). */
  during?: (target: BenchProcess) => Promise<void>;
}

export interface IngestRun extends LoadResult {
  name: string;
  /** Events accepted over every round and warm-up (2xx × events per request). */
  okTotal: number;
  /** Events per second accepted in the best round (2xx × events per request). */
  eventsPerSec: number;
  peakRssBytes: number;
  /** CPU seconds used by the target and the emulator during the best round. */
  cpuSec: { target: number; emulator: number };
  durationSec: number;
  /** Requests per second of every round, in order: how much the machine's noise moved them. */
  rounds: number[];
}

/** CPU microseconds the target used per 2xx answer in its best round. */
export const cpuPerRequestUs = (run: IngestRun) => (run.cpuSec.target * 1e6) / run.ok;

export interface IngestOptions {
  targets: IngestTarget[];
  database: BenchDatabase;
  emulator: Emulator;
  /** Events per request: 1 posts one CloudEvent, more posts a batch. */
  eventsPerRequest: number;
  connections: number;
  /** Requests per second across all connections; unset = as fast as the target answers. */
  overallRate?: number;
  /** Purge the queue between rounds (default true); false when a consumer is draining it. */
  purge?: boolean;
  /** Rounds per target; default 1 in --quick, else 3. */
  rounds?: number;
  /** Measured seconds per round, overriding the default. */
  measureSec?: number;
}

/**
 * Warm-up and measured window per round. Full runs measure several interleaved rounds per target
 * and keep each target's best: noise from other work on a shared machine only ever slows a round
 * down, so the best round is the least disturbed one, and interleaving exposes every target to the
 * same spells of noise.
 */
export const ingestDurations = (quick: boolean) =>
  quick ? { warmUpSec: 1, measureSec: 3, rounds: 1 } : { warmUpSec: 2, measureSec: 8, rounds: 3 };

async function startTarget(target: IngestTarget, options: IngestOptions): Promise<BenchProcess> {
  const { emulator } = options;
  if (target.kind === 'api' || target.kind === 'api-unpublished') {
    const env = { ...serviceEnv(options.database, emulator), ...target.apiEnv };
    return target.kind === 'api'
      ? spawnService('api', env)
      : spawnService('api', env, 'bench/support/api-unpublished-main.ts');
  }
  const args = ['bench/support/baseline-server.ts'];
  if (target.kind === 'bare+publish') {
    args.push('--publish', '--endpoint', emulator.endpoint, '--topic', emulator.topicArn);
  }
  return spawnNode(target.name, args, {}, (l) => l.msg === 'baseline listening');
}

/**
 * Starts every target (idle ones cost nothing), warms each, then loads them in interleaved rounds
 * and reports each target's best round. Targets are stopped at the end.
 */
export async function runIngest(
  context: BenchContext,
  options: IngestOptions,
): Promise<Map<string, IngestRun>> {
  const durations = { ...ingestDurations(context.quick) };
  if (options.measureSec) durations.measureSec = options.measureSec;
  const rounds = options.rounds ?? durations.rounds;
  const procs = new Map<string, BenchProcess>();
  const runs = new Map<string, IngestRun>();
  const batch = options.eventsPerRequest > 1;
  try {
    for (const target of options.targets) procs.set(target.name, await startTarget(target, options));
    const loads = new Map<string, LoadOptions>();
    for (const target of options.targets) {
      const next = createOrderEvents(runPrefix(`${target.name}-${options.eventsPerRequest}`));
      loads.set(target.name, {
        url: `http://127.0.0.1:${procs.get(target.name)?.ready.port}/v1/events`,
        connections: options.connections,
        durationSec: durations.measureSec,
        contentType: batch ? 'application/cloudevents-batch+json' : 'application/cloudevents+json',
        body: batch
          ? () => JSON.stringify(Array.from({ length: options.eventsPerRequest }, next))
          : () => JSON.stringify(next()),
        ...(options.overallRate ? { overallRate: options.overallRate } : {}),
      });
    }
    const okTotal = new Map<string, number>();
    for (const target of options.targets) {
      const warm = await runLoad({
        ...(loads.get(target.name) as LoadOptions),
        durationSec: durations.warmUpSec,
      });
      okTotal.set(target.name, warm.ok);
      if (options.purge !== false) await purgeQueue(options.emulator);
    }
    for (let round = 0; round < rounds; round++) {
      for (const target of options.targets) {
        const proc = procs.get(target.name) as BenchProcess;
        const cpu0 = { target: proc.cpuSec(), emulator: options.emulator.cpuSec() };
        const ticker = target.during
          ? setInterval(() => void target.during?.(proc).catch(() => undefined), 5_000)
          : undefined;
        let result: LoadResult;
        try {
          result = await runLoad(loads.get(target.name) as LoadOptions);
        } finally {
          clearInterval(ticker);
        }
        okTotal.set(target.name, (okTotal.get(target.name) ?? 0) + result.ok);
        const previous = runs.get(target.name);
        const roundRates = [...(previous?.rounds ?? []), result.okPerSec];
        const errors = (previous?.errors ?? 0) + result.errors;
        const non2xx = (previous?.non2xx ?? 0) + result.non2xx;
        if (!previous || result.okPerSec > previous.okPerSec) {
          runs.set(target.name, {
            ...result,
            name: target.name,
            okTotal: 0,
            eventsPerSec: result.okPerSec * options.eventsPerRequest,
            peakRssBytes: 0,
            cpuSec: {
              target: proc.cpuSec() - cpu0.target,
              emulator: options.emulator.cpuSec() - cpu0.emulator,
            },
            durationSec: durations.measureSec,
            rounds: roundRates,
            errors,
            non2xx,
          });
        } else {
          runs.set(target.name, { ...previous, rounds: roundRates, errors, non2xx });
        }
        if (options.purge !== false) await purgeQueue(options.emulator);
      }
    }
    for (const target of options.targets) {
      const run = runs.get(target.name) as IngestRun;
      run.peakRssBytes = procs.get(target.name)?.peakRssBytes() ?? 0;
      run.okTotal = (okTotal.get(target.name) ?? 0) * options.eventsPerRequest;
      context.progress(
        `  ${run.name}: best ${Math.round(run.okPerSec)} req/s of [${run.rounds.map(Math.round).join(', ')}], ` +
          `p50 ${run.p50Ms} ms, p99 ${run.p99Ms} ms, errors ${run.errors}, non-2xx ${run.non2xx}, ` +
          `CPU ${run.cpuSec.target.toFixed(1)} s (emulator ${run.cpuSec.emulator.toFixed(1)} s) in ${run.durationSec} s`,
      );
    }
    return runs;
  } finally {
    await Promise.all([...procs.values()].map((p) => p.stop()));
  }
}
