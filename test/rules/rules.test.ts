/**
 * The Prometheus rules file: generated, complete, and every alert actionable (annotations, severity,
 * a runbook that exists, promtool unit tests that see it fire and stay quiet).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { renderRulesYaml, rulesFilePath } from '../../observability/rules/rules.ts';
import { runbookBaseUrl } from '../../observability/rules/runbooks.ts';
import { isAlertingRule, type RulesFile } from '../../observability/rules/types.ts';
import { burnRateAlerts, recordedWindows, recordName, slos } from '../../observability/slos.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const runbookDir = join(repoRoot, 'docs', 'runbooks');
const unitTestDir = join(repoRoot, 'test', 'rules', 'promtool');

const committed = readFileSync(join(repoRoot, rulesFilePath), 'utf8');
const rules = parse(committed) as RulesFile;
const allRules = rules.groups.flatMap((group) => group.rules);
const alerts = allRules.filter(isAlertingRule);
const alertNames = [...new Set(alerts.map((alert) => alert.alert))];

interface AlertRuleTest {
  alertname: string;
  exp_alerts?: { exp_labels: Record<string, string> }[];
}
interface PromtoolTestFile {
  tests: { name: string; alert_rule_test?: AlertRuleTest[] }[];
}

describe('prometheus rules file', () => {
  test('when the rules are generated again, then they equal the committed file', () => {
    assert.equal(
      committed,
      renderRulesYaml(),
      `${rulesFilePath} is stale: run \`node observability/rules/generate.ts\` and commit the result`,
    );
  });

  test('when the file is parsed, then it has recording rules, alerts and uniquely named groups', () => {
    const groupNames = rules.groups.map((group) => group.name);
    assert.equal(new Set(groupNames).size, groupNames.length);
    assert.ok(alerts.length > 0);
    assert.ok(allRules.some((rule) => !isAlertingRule(rule)));
  });

  test('when an SLO is defined, then its error ratio is recorded over every window its alerts read', () => {
    const recorded = new Set(allRules.flatMap((rule) => ('record' in rule ? [rule.record] : [])));
    for (const slo of slos) {
      for (const window of recordedWindows) {
        assert.ok(recorded.has(recordName(slo, window)), `${recordName(slo, window)} is not recorded`);
      }
      for (const pair of burnRateAlerts) {
        const alert = alerts.find(
          (rule) => rule.labels.slo === slo.name && rule.labels.long_window === pair.longWindow,
        );
        assert.ok(alert, `no ${pair.longWindow} burn-rate alert for ${slo.name}`);
        assert.equal(alert.labels.severity, pair.severity);
        assert.ok(alert.expr.includes(`${recordName(slo, pair.longWindow)} > `));
        assert.ok(alert.expr.includes(`${recordName(slo, pair.shortWindow)} > `));
      }
    }
  });

  for (const alert of alerts) {
    const where = `${alert.alert} (${Object.values(alert.labels).join(', ')})`;
    test(`when ${where} fires, then it carries severity, summary, description and its runbook URL`, () => {
      assert.ok(
        ['page', 'ticket'].includes(alert.labels.severity),
        `${where}: severity must be page or ticket`,
      );
      assert.ok(alert.annotations.summary?.trim(), `${where}: summary missing`);
      assert.ok(alert.annotations.description?.trim(), `${where}: description missing`);
      assert.equal(alert.annotations.runbook_url, `${runbookBaseUrl}${alert.alert}.md`);
      assert.match(alert.alert, /^Ingesta[A-Z][A-Za-z]+$/);
    });
  }
});

describe('runbooks', () => {
  const indexPath = join(runbookDir, 'README.md');

  for (const name of alertNames) {
    test(`when ${name} links its runbook, then docs/runbooks/${name}.md exists and the index lists it`, () => {
      assert.ok(existsSync(join(runbookDir, `${name}.md`)), `docs/runbooks/${name}.md is missing`);
      const index = existsSync(indexPath) ? readFileSync(indexPath, 'utf8') : '';
      assert.ok(index.includes(`(${name}.md)`), `docs/runbooks/README.md does not link ${name}.md`);
      const runbook = readFileSync(join(runbookDir, `${name}.md`), 'utf8');
      assert.ok(runbook.startsWith(`# ${name}\n`), `${name}.md must start with "# ${name}"`);
      for (const section of ['## Meaning', '## Impact', '## Diagnosis', '## Mitigation', '## Escalation']) {
        assert.ok(runbook.includes(`\n${section}\n`), `${name}.md lacks a "${section}" section`);
      }
    });
  }

  test('when a Prometheus alert runbook exists, then an alert of that name exists', () => {
    // CloudWatch alarms of the infra stack may have kebab-case runbooks beside these; alerts are Ingesta*.
    const runbookFiles = readdirSync(runbookDir).filter((name) => /^Ingesta.*\.md$/.test(name));
    const orphans = runbookFiles
      .map((file) => file.replace(/\.md$/, ''))
      .filter((name) => !alertNames.includes(name));
    assert.deepEqual(orphans, []);
  });
});

describe('promtool unit tests of the alerts', () => {
  const testFiles = readdirSync(unitTestDir).filter((name) => name.endsWith('.yaml'));

  for (const name of alertNames) {
    test(`when ${name} is unit tested, then its cases see every rule of it fire and see it stay quiet`, () => {
      assert.ok(testFiles.includes(`${name}.yaml`), `test/rules/promtool/${name}.yaml is missing`);
      const file = parse(readFileSync(join(unitTestDir, `${name}.yaml`), 'utf8')) as PromtoolTestFile;
      const cases = file.tests.flatMap((t) => t.alert_rule_test ?? []).filter((c) => c.alertname === name);
      assert.ok(
        cases.some((c) => (c.exp_alerts ?? []).length === 0),
        `${name}: no case expects the alert to stay quiet`,
      );
      const expected = cases.flatMap((c) => c.exp_alerts ?? []);
      for (const rule of alerts.filter((alert) => alert.alert === name)) {
        const labels = Object.entries(rule.labels);
        assert.ok(
          expected.some((alert) => labels.every(([key, value]) => alert.exp_labels[key] === value)),
          `${name}: no case sees the rule with labels ${JSON.stringify(rule.labels)} fire`,
        );
      }
    });
  }
});
