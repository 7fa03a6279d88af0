import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { repoRoot } from './support/markdown.ts';

const runbookDir = join(repoRoot, 'docs', 'runbooks');
const rulesFile = join(repoRoot, 'charts', 'ingesta', 'files', 'prometheus-rules.yaml');

/** The sections an on-call engineer looks for, in every runbook. */
const requiredSections = ['## Meaning', '## Impact', '## Mitigation', '## Escalation'];

function runbookProblems(name: string): string[] {
  const path = join(runbookDir, `${name}.md`);
  if (!existsSync(path)) return [`docs/runbooks/${name}.md is missing`];
  const text = readFileSync(path, 'utf8');
  const problems = text.startsWith(`# ${name}\n`) ? [] : [`${name}.md must start with "# ${name}"`];
  for (const section of requiredSections) {
    if (!text.includes(`\n${section}\n`)) problems.push(`${name}.md lacks "${section}"`);
  }
  return problems;
}

describe('a runbook for every Prometheus alert', () => {
  const rules = parse(readFileSync(rulesFile, 'utf8')) as {
    groups: { rules: { alert?: string; annotations?: Record<string, string> }[] }[];
  };
  const alerts = rules.groups.flatMap((group) => group.rules).filter((rule) => rule.alert);
  const names = [...new Set(alerts.map((rule) => rule.alert as string))];

  test('when the rules file is read, then it has alerts (the check is not vacuous)', () => {
    assert.ok(names.length >= 5, `only ${names.length} alerts found`);
  });

  test('when an alert fires, then docs/runbooks/<alert>.md exists with meaning, impact, mitigation and escalation', () => {
    assert.deepEqual(names.flatMap(runbookProblems), []);
  });

  test('when an alert links its runbook, then the link ends in that runbook', () => {
    for (const rule of alerts) {
      assert.match(rule.annotations?.runbook_url ?? '', new RegExp(`/docs/runbooks/${rule.alert}\\.md$`));
    }
  });
});

interface AlarmReport {
  alarmNames: string[];
  described: { name: string; runbook: string | null }[];
}

const infraInstalled = existsSync(join(repoRoot, 'infra', 'node_modules', '@pulumi', 'pulumi'));

describe('a runbook for every CloudWatch alarm of the infra stacks', () => {
  // CI installs infra's dependencies before this suite (npm run test:infra); locally they may be absent.
  const skip =
    !infraInstalled && process.env.CI !== 'true'
      ? 'infra dependencies not installed: npm ci --prefix infra'
      : false;

  for (const stack of ['dev', 'prod'] as const) {
    test(`when the ${stack} stack exports its alarm names, then each has docs/runbooks/<name>.md`, {
      skip,
    }, () => {
      const report = JSON.parse(
        execFileSync(process.execPath, [join(repoRoot, 'test/docs/support/alarm-runbooks.ts'), stack], {
          cwd: join(repoRoot, 'infra'),
          encoding: 'utf8',
          timeout: 120_000,
        }),
      ) as AlarmReport;
      const prefix = `ingesta-${stack}-`;
      assert.ok(report.alarmNames.length >= 10, `only ${report.alarmNames.length} alarms exported`);
      const names = report.alarmNames.map((full) => {
        assert.ok(full.startsWith(prefix), `${full} does not start with ${prefix}`);
        return full.slice(prefix.length);
      });
      assert.deepEqual(names.flatMap(runbookProblems), []);
      // Alarms that notify through a composite name the composite's runbook: it must exist too.
      for (const { name, runbook } of report.described) {
        assert.ok(runbook, `${name}: its description names no runbook`);
        assert.ok(existsSync(join(repoRoot, runbook)), `${name}: ${runbook} does not exist`);
      }
    });
  }

  test('when the docs map is read, then it links every CloudWatch alarm runbook', () => {
    const map = readFileSync(join(repoRoot, 'docs', 'README.md'), 'utf8');
    // Prometheus alerts are Ingesta*; the kebab-case runbooks belong to the CloudWatch alarms.
    const alarmRunbooks = readdirSync(runbookDir).filter((file) =>
      /^[a-z0-9]+(?:-[a-z0-9]+)*\.md$/.test(file),
    );
    assert.ok(alarmRunbooks.length >= 10, `only ${alarmRunbooks.length} alarm runbooks`);
    for (const file of alarmRunbooks)
      assert.ok(map.includes(`(runbooks/${file})`), `docs/README.md does not link ${file}`);
  });
});
