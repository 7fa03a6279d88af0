import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { type Manifest, podSpecs, render, repoRoot } from './support/chart.ts';
import { validateStrict } from './support/kubernetes-schemas.ts';
import { restrictedViolations } from './support/pod-security.ts';
import { documentedTable, productionTable } from './support/production-table.ts';

const doc = readFileSync(join(repoRoot, 'docs', 'operations.md'), 'utf8');
// The doc uses release "ingesta" in namespace "ingesta", as the chart tests render it.
const manifests = render({ valuesFile: 'ci/production-values.yaml', withCrds: true });
const commandLines = [...doc.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((block) => block[1]!.split('\n'));

const rendered = (kind: string, name: string) =>
  manifests.find((manifest: Manifest) => manifest.kind === kind && manifest.metadata.name === name);

describe('docs/operations.md', () => {
  test('when it says what runs in production, then its table is the one generated from what CI deploys', () => {
    assert.equal(
      documentedTable(doc),
      productionTable(),
      'regenerate with: node test/chart/support/production-table.ts --write',
    );
  });

  test('when it sends someone to Grafana and CloudWatch, then the commands name the stack’s objects', () => {
    assert.match(doc, /port-forward svc\/kube-prometheus-stack-grafana 3000:80/);
    assert.match(doc, /admin-password/);
    for (const file of ['ingesta-overview.json', 'ingesta-slo.json']) {
      const { uid } = JSON.parse(
        readFileSync(join(repoRoot, 'charts/ingesta/files/dashboards', file), 'utf8'),
      );
      assert.ok(doc.includes(`http://127.0.0.1:3000/d/${uid}`), `no link to dashboard ${uid}`);
    }
    assert.match(doc, /stack output dashboardName/);
    assert.match(doc, /#dashboards\/dashboard\/\$dashboard/);
  });

  test('when it port-forwards a Service, then the Service and its named port exist in the chart', () => {
    const forwards = [...doc.matchAll(/port-forward service\/([\w-]+) (\d+):(\w+)/g)];
    assert.ok(forwards.length >= 3, 'recipes for the API and both admin ports');
    for (const [line, name, , port] of forwards) {
      const service = rendered('Service', name!);
      assert.ok(service, `${line}: no Service ${name}`);
      assert.ok(
        service.spec.ports.some((servicePort: { name: string }) => servicePort.name === port),
        `${line}: Service ${name} has no port ${port}`,
      );
    }
    const targets = forwards.map(([, name, , port]) => `${name}:${port}`);
    for (const expected of ['ingesta-api:http', 'ingesta-api-admin:admin', 'ingesta-consumer:admin']) {
      assert.ok(targets.includes(expected), `no port-forward recipe for ${expected}`);
    }
  });

  test('when it names chart objects, then each one is rendered by the chart', () => {
    const kinds: Record<string, string> = {
      deployment: 'Deployment',
      job: 'Job',
      cronjob: 'CronJob',
      scaledobject: 'ScaledObject',
      targetgroupbinding: 'TargetGroupBinding',
      hpa: 'HorizontalPodAutoscaler',
    };
    const references = [
      ...doc.matchAll(/\b(deployment|job|cronjob|scaledobject|targetgroupbinding)[/ ](ingesta-[\w-]+)/g),
    ].filter(([, , name]) => name !== 'ingesta-migrations-rollback' && !name!.endsWith('-now'));
    assert.ok(references.length > 0);
    for (const [reference, kind, name] of references) {
      // Hooks and their objects count too: `helm template` renders them with the release.
      assert.ok(rendered(kinds[kind!]!, name!), `${reference} is not rendered by the chart`);
    }
  });

  test('when it upgrades with Helm, then it uses Helm 4 flags', () => {
    const upgrades = commandLines.filter((line) => /helm upgrade/.test(line));
    assert.ok(upgrades.length >= 3);
    assert.doesNotMatch(doc, /--atomic/);
    const joined = doc.replaceAll('\\\n', ' ');
    for (const command of joined.matchAll(/helm upgrade --install[^\n]*/g)) {
      if (!command[0].includes('--dry-run')) assert.match(command[0], /--rollback-on-failure/);
    }
  });

  test('when it gives a one-off migration rollback Job, then the Job passes the restricted policy and the schema', () => {
    const manifest = doc.match(/kubectl -n ingesta apply -f - <<EOF\n([\s\S]*?)\nEOF/)?.[1];
    assert.ok(manifest, 'rollback Job manifest');
    const job = parse(manifest.replace('$IMAGE', 'registry.example/ingesta:1.4.2')) as Manifest;
    assert.deepEqual(validateStrict(job), []);
    assert.deepEqual(podSpecs([job]).flatMap(restrictedViolations), []);
    const hook = rendered('Job', 'ingesta-migrations')!;
    // Same ServiceAccount and labels as the hook, so the migrations NetworkPolicy admits it.
    assert.equal(job.spec.template.spec.serviceAccountName, hook.spec.template.spec.serviceAccountName);
    for (const key of [
      'app.kubernetes.io/name',
      'app.kubernetes.io/instance',
      'app.kubernetes.io/component',
    ]) {
      assert.equal(job.spec.template.metadata.labels[key], hook.spec.template.metadata.labels[key], key);
    }
    assert.deepEqual(job.spec.template.spec.containers[0].command, ['node', 'dist/db/cli.js', 'rollback']);
  });
});
