import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { podSpecs, render, scenarios } from './support/chart.ts';
import { restrictedViolations } from './support/pod-security.ts';

describe('Pod Security Standard "restricted" on every pod spec', () => {
  for (const scenario of scenarios()) {
    test(`when the chart is rendered with ${scenario.name}, then every pod spec is restricted`, () => {
      const specs = podSpecs(render(scenario));
      const owners = specs.map((source) => source.owner.split('/')[0]);
      // Deployments (api, consumer), the migration Job, the maintenance CronJob and the `helm test` pod.
      assert.deepEqual([...new Set(owners)].sort(), ['CronJob', 'Deployment', 'Job', 'Pod']);
      assert.deepEqual(specs.flatMap(restrictedViolations), []);
    });
  }

  test('when a container escalates privileges, then the policy check reports it', () => {
    const [source] = podSpecs(render({ withCrds: false }));
    const spec = structuredClone(source!.spec);
    spec.containers[0].securityContext.allowPrivilegeEscalation = true;
    spec.volumes.push({ name: 'host', hostPath: { path: '/' } });
    assert.deepEqual(restrictedViolations({ owner: 'Deployment/x', spec }), [
      'Deployment/x: volume host is a hostPath',
      `Deployment/x: container ${spec.containers[0].name} allows privilege escalation`,
    ]);
  });
});
