import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { type DatabaseServer, startDatabaseServer } from './backends.ts';
import { repoRoot } from './processes.ts';

/** One measured figure, printed beside the baseline measured in the same run. */
export interface Figure {
  benchmark: string;
  name: string;
  unit: string;
  value: number;
  baseline?: { name: string; value: number };
  /** value ÷ baseline.value. */
  ratio?: number;
  goal?: { text: string; met: boolean };
  note?: string;
}

export interface BenchContext {
  quick: boolean;
  server: DatabaseServer;
  /** Progress lines go to stderr; stdout carries only the results table. */
  progress(message: string): void;
}

export interface Benchmark {
  /** Short name, also the file name in bench/ and the results file prefix. */
  name: string;
  title: string;
  run(context: BenchContext): Promise<Figure[]>;
}

/** A figure with a same-run baseline; the ratio is computed here so every benchmark does it alike. */
export function compare(
  figure: Omit<Figure, 'ratio' | 'baseline' | 'goal'>,
  baseline: { name: string; value: number },
  goal?: (ratio: number) => { text: string; met: boolean },
): Figure {
  const ratio = baseline.value > 0 ? figure.value / baseline.value : Number.NaN;
  return { ...figure, baseline, ratio, ...(goal ? { goal: goal(ratio) } : {}) };
}

const format = (n: number | undefined, unit = '') => {
  if (n === undefined) return '';
  if (Number.isNaN(n)) return 'n/a';
  const digits = Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2;
  return `${n.toLocaleString('en-US', { maximumFractionDigits: digits })}${unit ? ` ${unit}` : ''}`;
};

/** The results as a Markdown table (readable on a terminal, pasteable into docs/performance.md). */
export function table(figures: Figure[]): string {
  const header = [
    'benchmark',
    'figure',
    'value',
    'baseline',
    'baseline value',
    'ratio',
    'goal',
    'result',
    'note',
  ];
  const rows = figures.map((f) => [
    f.benchmark,
    f.name,
    format(f.value, f.unit),
    f.baseline?.name ?? '',
    f.baseline ? format(f.baseline.value, f.unit) : '',
    f.ratio === undefined ? '' : format(f.ratio),
    f.goal?.text ?? '',
    f.goal ? (f.goal.met ? 'PASS' : 'MISS') : '',
    f.note ?? '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function machine() {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  };
}

/**
 * Runs benchmarks one after another against one database server, prints the table and writes JSON
 * to bench/results/. Exits 0 whether or not goals are met (a shared machine is noisy); only a real
 * error (a crash, a benchmark that could not run) exits non-zero.
 */
export async function runBenchmarks(benchmarks: Benchmark[]): Promise<void> {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } },
  });
  const quick = values.quick ?? false;
  // --only ingest,drain runs a subset (the names are the bench/<name>.ts files).
  const only = values.only?.split(',');
  if (only) benchmarks = benchmarks.filter((b) => only.includes(b.name));
  const startedAt = new Date();
  const progress = (message: string) =>
    process.stderr.write(`[${((Date.now() - startedAt.getTime()) / 1000).toFixed(1)}s] ${message}\n`);
  const server = await startDatabaseServer();
  const figures: Figure[] = [];
  const durations: Record<string, number> = {};
  try {
    for (const benchmark of benchmarks) {
      progress(`${benchmark.title}${quick ? ' (quick)' : ''}`);
      const t0 = Date.now();
      figures.push(...(await benchmark.run({ quick, server, progress })));
      durations[benchmark.name] = (Date.now() - t0) / 1000;
    }
  } finally {
    await server.stop();
  }
  const totalSec = (Date.now() - startedAt.getTime()) / 1000;
  process.stdout.write(`\n${table(figures)}\n\n`);
  const missed = figures.filter((f) => f.goal && !f.goal.met).length;
  const goals = figures.filter((f) => f.goal).length;
  process.stdout.write(
    `${goals - missed}/${goals} goals met; ${quick ? 'quick' : 'full'} run took ${totalSec.toFixed(0)} s ` +
      `(${Object.entries(durations)
        .map(([name, sec]) => `${name} ${sec.toFixed(0)} s`)
        .join(', ')})\n`,
  );
  const dir = new URL('bench/results/', `file://${repoRoot}`);
  mkdirSync(dir, { recursive: true });
  const file = new URL(
    `${benchmarks.length === 1 ? benchmarks[0]?.name : 'all'}-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`,
    dir,
  );
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        startedAt: startedAt.toISOString(),
        mode: quick ? 'quick' : 'full',
        machine: machine(),
        database: server.kind,
        durationsSec: durations,
        totalSec,
        figures,
      },
      null,
      2,
    )}\n`,
  );
  process.stdout.write(`results: bench/results/${file.pathname.split('/').at(-1)}\n`);
}
