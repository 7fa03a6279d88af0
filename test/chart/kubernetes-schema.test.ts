import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { render, renderManifests, scenarios } from './support/chart.ts';
import { schemaKubernetesVersion, validateStrict } from './support/kubernetes-schemas.ts';

describe(`rendered objects against the Kubernetes ${schemaKubernetesVersion} and CRD schemas (strict)`, () => {
  for (const scenario of scenarios()) {
    test(`when the chart is rendered with ${scenario.name}, then every object is valid and has no unknown field`, () => {
      const manifests = render(scenario);
      assert.ok(manifests.length > 0);
      const problems = manifests.flatMap((manifest) => validateStrict(manifest));
      assert.deepEqual(problems, []);
    });
  }
});

describe('the strict validator itself', () => {
  const deployment = () => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'probe' },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'probe' } },
      template: {
        metadata: { labels: { app: 'probe' } },
        spec: { containers: [{ name: 'app', image: 'app:1', securityContext: { runAsNonRoot: true } }] },
      },
    },
  });

  test('when an object is valid, then it reports nothing', () => {
    assert.deepEqual(validateStrict(deployment()), []);
  });

  test('when a Deployment has replicass instead of replicas, then it reports the unknown field', () => {
    const object = deployment();
    Object.assign(object.spec, { replicass: 2 });
    assert.deepEqual(validateStrict(object), [
      { object: 'Deployment/probe', message: '/spec: unknown field "replicass"' },
    ]);
  });

  test('when a nested container field is misspelled, then it reports it with its path', () => {
    const object = deployment();
    Object.assign(object.spec.template.spec.containers[0]!.securityContext, { runAsNonroot: true });
    assert.deepEqual(validateStrict(object), [
      {
        object: 'Deployment/probe',
        message: '/spec/template/spec/containers/0/securityContext: unknown field "runAsNonroot"',
      },
    ]);
  });

  test('when a value has the wrong type, then the schema error is reported', () => {
    const object = deployment();
    Object.assign(object.spec, { replicas: 'two' });
    const problems = validateStrict(object);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.message, /replicas/);
  });

  test('when labels (a free map) carry any key, then nothing is reported', () => {
    const object = deployment();
    Object.assign(object.metadata, { labels: { 'example.com/anything': 'x' } });
    assert.deepEqual(validateStrict(object), []);
  });

  test('when a KEDA trigger has an unknown field, then it is reported', () => {
    const problems = validateStrict({
      apiVersion: 'keda.sh/v1alpha1',
      kind: 'ScaledObject',
      metadata: { name: 'probe' },
      spec: {
        scaleTargetRef: { name: 'app' },
        triggers: [{ type: 'aws-sqs-queue', metadata: {}, authRef: {} }],
      },
    });
    assert.deepEqual(problems, [
      { object: 'ScaledObject/probe', message: '/spec/triggers/0: unknown field "authRef"' },
    ]);
  });

  test('when a TargetGroupBinding has an unknown field, then its JSON schema made strict reports it', () => {
    const problems = validateStrict({
      apiVersion: 'elbv2.k8s.aws/v1beta1',
      kind: 'TargetGroupBinding',
      metadata: { name: 'probe' },
      spec: { serviceRef: { name: 'app', port: 'http' }, targetGroupARN: 'arn:aws:x', targetTyp: 'ip' },
    });
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.message, /targetTyp/);
  });

  test('when an object kind has no known schema, then it is reported rather than skipped', () => {
    assert.deepEqual(
      validateStrict({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } }),
      [{ object: 'Widget/w', message: 'no schema known for example.com/v1/Widget' }],
    );
  });

  test('when a pass-through value (affinity) carries a misspelled Kubernetes field, then the rendered Deployment fails', () => {
    const manifests = renderManifests({ withCrds: false }, [
      '--set-json',
      'api.affinity={"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerm":[]}}}',
    ]);
    const problems = manifests.flatMap((manifest) => validateStrict(manifest));
    assert.ok(
      problems.some((problem) => problem.message.includes('unknown field "nodeSelectorTerm"')),
      JSON.stringify(problems),
    );
  });
});
