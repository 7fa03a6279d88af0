import { PurgeQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { BenchDatabase, Emulator } from './backends.ts';
import { serviceEnv } from './backends.ts';
import { createOrderEvents, runPrefix } from './events.ts';
import type { BenchContext } from './harness.ts';
import { type LoadResult, runLoad } from './load.ts';
import { type BenchProcess, spawnNode, spawnService } from './processes.ts';

export type IngestTarget = 'bare' | 'bare+publish' | 'api';

export interface IngestRun extends LoadResult {
  target: IngestTarget;
  /** Events accepted in the measured window and the warm-up (2xx × events per request). */
  okTotal: number;
  /** Events per second accepted (2xx × events per request). */
  eventsPerSec: number;
  peakRssBytes: number;
  /** CPU seconds used during the measured window, per process. */
  cpuSec: { target: number; emulator: number };
  durationSec: number;
}

export interface IngestRunOptions {
  target: IngestTarget;
  database: BenchDatabase;
  emulator: Emulator;
  /** Events per request: 1 posts one CloudEvent, more posts a batch. */
  eventsPerRequest: number;
  connections: number;
  /** Extra environment for the API (telemetry settings). */
  apiEnv?: Record<string, string>;
  /** Requests per second across all connections; unset = as fast as the target answers. */
  overallRate?: number;
  /** Purge the queue after the run (default true); false when a consumer is draining it. */
  purge?: boolean;
  /** Called every few seconds while the load runs (e.g. a /metrics scrape). */
  during?: (target: BenchProcess) => Promise<void>;
}

/** Measured and warm-up durations for the ingest benchmarks. */
export const ingestDurations = (quick: boolean) =>
  quick ? { warmUpSec: 1, measureSec: 3 } : { warmUpSec: 3, measureSec: 15 };

async function startTarget(options: IngestRunOptions): Promise<{ proc: BenchProcess; port: number }> {
  const { target, emulator } = options;
  if (target === 'api') {
    const proc = await spawnService('api', {
      ...serviceEnv(options.database, emulator),
      ...options.apiEnv,
    });
    return { proc, port: Number(proc.ready.port) };
  }
  const args = ['bench/support/baseline-server.ts'];
  if (target === 'bare+publish')
    args.push('--publish', '--endpoint', emulator.endpoint, '--topic', emulator.topicArn);
  const proc = await spawnNode(target, args, {}, (l) => l.msg === 'baseline listening');
  return { proc, port: Number(proc.ready.port) };
}

/** Starts one ingest target, warms it, loads it, and stops it; the queue is purged afterwards. */
export async function runIngest(context: BenchContext, options: IngestRunOptions): Promise<IngestRun> {
  const { warmUpSec, measureSec } = ingestDurations(context.quick);
  const { proc, port } = await startTarget(options);
  const next = createOrderEvents(runPrefix(`${options.target}-${options.eventsPerRequest}`));
  const batch = options.eventsPerRequest > 1;
  const load = {
    url: `http://127.0.0.1:${port}/v1/events`,
    connections: options.connections,
    durationSec: measureSec,
    contentType: batch ? 'application/cloudevents-batch+json' : 'application/cloudevents+json',
    body: batch
      ? () => JSON.stringify(Array.from({ length: options.eventsPerRequest }, next))
      : () => JSON.stringify(next()),
    ...(options.overallRate ? { overallRate: options.overallRate } : {}),
  };
  let ticker: NodeJS.Timeout | undefined;
  try {
    const warm = await runLoad({ ...load, durationSec: warmUpSec });
    const cpu0 = { target: proc.cpuSec(), emulator: options.emulator.cpuSec() };
    if (options.during) {
      const during = options.during;
      ticker = setInterval(() => void during(proc).catch(() => undefined), 5_000);
    }
    const result = await runLoad(load);
    clearInterval(ticker);
    const run: IngestRun = {
      ...result,
      target: options.target,
      eventsPerSec: result.okPerSec * options.eventsPerRequest,
      okTotal: (warm.ok + result.ok) * options.eventsPerRequest,
      peakRssBytes: proc.peakRssBytes(),
      cpuSec: {
        target: proc.cpuSec() - cpu0.target,
        emulator: options.emulator.cpuSec() - cpu0.emulator,
      },
      durationSec: measureSec,
    };
    context.progress(
      `  ${options.target}: ${Math.round(run.okPerSec)} req/s, p50 ${run.p50Ms} ms, p99 ${run.p99Ms} ms, ` +
        `errors ${run.errors}, non-2xx ${run.non2xx}, CPU ${run.cpuSec.target.toFixed(1)} s ` +
        `(emulator ${run.cpuSec.emulator.toFixed(1)} s)`,
    );
    return run;
  } finally {
    clearInterval(ticker);
    await proc.stop();
    if (options.purge !== false) await purgeQueue(options.emulator);
  }
}

/** Empties the queue so the next target publishes into an emulator in the same state. */
export async function purgeQueue(emulator: Emulator): Promise<void> {
  const sqs = new SQSClient({
    region: emulator.region,
    endpoint: emulator.endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  try {
    await sqs.send(new PurgeQueueCommand({ QueueUrl: emulator.queueUrl }));
  } finally {
    sqs.destroy();
  }
}
