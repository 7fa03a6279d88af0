/**
 * Runs promtool on the chart's Prometheus rules: `promtool check rules` on the rules file and on every
 * dashboard query, and `promtool test rules` on each unit test file in test/rules/promtool/.
 * promtool comes from Debian's `prometheus` package; set PROMTOOL to use another binary.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { expandVariables, panelQueries } from '../../observability/dashboards/generate.ts';
import { rulesFilePath } from '../../observability/rules/rules.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const unitTestDir = join(repoRoot, 'test', 'rules', 'promtool');
const runFile = promisify(execFile);

function locatePromtool(): string {
  const candidate = process.env.PROMTOOL ?? 'promtool';
  const probe = spawnSync(candidate, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      `promtool not found (tried "${candidate}"). Install Prometheus' promtool, e.g. on Debian/Ubuntu:\n` +
        '  sudo apt-get update && sudo apt-get install -y prometheus\n' +
        'or download it from https://prometheus.io/download/ and set PROMTOOL=/path/to/promtool.',
    );
  }
  return candidate;
}

async function promtool(binary: string, args: string[], cwd = repoRoot): Promise<void> {
  try {
    await runFile(binary, args, { cwd, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    assert.fail(`promtool ${args.join(' ')} failed:\n${stdout}${stderr}`);
  }
}

describe('promtool', () => {
  let binary = 'promtool';
  let scratchDir = '';

  before(() => {
    binary = locatePromtool();
    scratchDir = mkdtempSync(join(tmpdir(), 'ingesta-promtool-'));
  });

  after(() => {
    if (scratchDir) rmSync(scratchDir, { recursive: true, force: true });
  });

  test('when promtool checks the rules file, then it is valid', async () => {
    await promtool(binary, ['check', 'rules', rulesFilePath]);
  });

  test('when every dashboard query is checked as a rule expression, then each one parses', async () => {
    const queries = panelQueries();
    const rules = queries.map((query, index) => ({
      record: `ingesta_dashboard_query_${index}`,
      expr: expandVariables(query.expr, { namespace: 'ingesta', rateInterval: '2m' }),
    }));
    const file = join(scratchDir, 'dashboard-queries.yaml');
    writeFileSync(file, stringify({ groups: [{ name: 'dashboard-queries', rules }] }));
    await promtool(binary, ['check', 'rules', file]);
  });

  describe('unit tests', { concurrency: 2 }, () => {
    const files = readdirSync(unitTestDir).filter((name) => name.endsWith('.yaml'));
    for (const file of files) {
      test(`when promtool runs ${file}, then every case passes`, async () => {
        await promtool(binary, ['test', 'rules', file], unitTestDir);
      });
    }
  });
});
