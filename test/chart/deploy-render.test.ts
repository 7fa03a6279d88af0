import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { type Environment, environments, templateArgs, upgradeArgs } from '../../deploy/release.ts';
import {
  grafanaFolderAnnotation,
  kubePrometheusStackValues,
  type LabelSelector,
  selects,
} from '../../infra/src/monitoring.ts';
import { getManifest, type Manifest, namespace, repoRoot } from './support/chart.ts';
import { validateStrict } from './support/kubernetes-schemas.ts';
import { renderRelease, stackOutputs } from './support/release.ts';

const prometheus = kubePrometheusStackValues.prometheus.prometheusSpec;
const sidecar = kubePrometheusStackValues.grafana.sidecar.dashboards;
const environmentValues = (environment: Environment) =>
  parse(readFileSync(join(repoRoot, 'deploy', 'values', `${environment}.yaml`), 'utf8'));
/** Labels of the namespace the release runs in, as Kubernetes sets them. */
const namespaceLabels = { 'kubernetes.io/metadata.name': namespace };

describe('deploy/release.ts', () => {
  test('when the tests render a release, then with the very arguments the workflow’s helm upgrade passes', () => {
    const options = {
      environment: 'production' as const,
      generatedValues: 'values.generated.yaml',
      imageRepository: stackOutputs.ecrRepositoryUrl,
      imageTag: 'abc',
      imageDigest: `sha256:${'ab'.repeat(32)}`,
    };
    const template = templateArgs(options);
    const upgrade = upgradeArgs(options);
    assert.equal(template[0], 'template');
    assert.equal(upgrade[0], 'upgrade');
    // Release, chart, namespace, values files in order, image: identical; after them only the
    // rollout flags an upgrade adds (install, rollback, wait, timeout, history).
    assert.deepEqual(upgrade.slice(1, template.length), template.slice(1));
    assert.deepEqual(
      upgrade.slice(template.length).filter((word) => word.startsWith('--')),
      ['--install', '--rollback-on-failure', '--wait=watcher', '--timeout', '--history-max'],
    );
  });
});

for (const environment of environments) {
  describe(`the ${environment} release as the deploy workflow renders it (stack outputs, then deploy/values/${environment}.yaml)`, () => {
    const manifests = renderRelease(environment);
    const values = environmentValues(environment);
    const all = (kind: string) => manifests.filter((manifest) => manifest.kind === kind);

    test('when rendered, then every object is valid against its strict Kubernetes schema', () => {
      assert.deepEqual(
        manifests.flatMap((manifest) => validateStrict(manifest)),
        [],
      );
    });

    test('when Prometheus looks for ServiceMonitors and rules, then its selectors pick the release’s', () => {
      // An empty selector selects everything only when *SelectorNilUsesHelmValues is false.
      for (const kind of ['serviceMonitor', 'rule'] as const) {
        assert.equal(prometheus[`${kind}SelectorNilUsesHelmValues`], false, kind);
      }
      const cases: [string, LabelSelector, LabelSelector][] = [
        ['ServiceMonitor', prometheus.serviceMonitorSelector, prometheus.serviceMonitorNamespaceSelector],
        ['PrometheusRule', prometheus.ruleSelector, prometheus.ruleNamespaceSelector],
      ];
      for (const [kind, selector, namespaceSelector] of cases) {
        const [object, ...others] = all(kind);
        assert.ok(object, `${kind} rendered`);
        assert.equal(others.length, 0);
        assert.ok(selects(selector, object.metadata.labels), `${kind} labels selected`);
        assert.ok(selects(namespaceSelector, namespaceLabels), `${kind} namespace selected`);
      }
    });

    test('when Grafana loads the dashboards, then its sidecar label picks them and they land in the ingesta folder', () => {
      const dashboards = all('ConfigMap').filter((map: Manifest) =>
        map.metadata.name.includes('-dashboard-'),
      );
      assert.ok(dashboards.length >= 2);
      for (const dashboard of dashboards) {
        assert.equal(dashboard.metadata.labels[sidecar.label], sidecar.labelValue, dashboard.metadata.name);
        assert.equal(dashboard.metadata.annotations?.[grafanaFolderAnnotation], 'ingesta');
      }
      assert.equal(sidecar.folderAnnotation, grafanaFolderAnnotation);
    });

    test('when load changes, then an HPA scales the API and a KEDA ScaledObject the consumer, within the environment’s bounds', () => {
      const apiHpa = getManifest(manifests, 'HorizontalPodAutoscaler', '-api');
      assert.equal(apiHpa.spec.minReplicas, values.api.autoscaling.minReplicas);
      assert.equal(apiHpa.spec.maxReplicas, values.api.autoscaling.maxReplicas);
      assert.equal(
        getManifest(manifests, 'Deployment', '-api').spec.replicas,
        undefined,
        'the HPA owns replicas',
      );
      const scaledObject = getManifest(manifests, 'ScaledObject', '-consumer');
      assert.equal(scaledObject.spec.minReplicaCount, values.consumer.autoscaling.minReplicas);
      assert.equal(scaledObject.spec.maxReplicaCount, values.consumer.autoscaling.maxReplicas);
      assert.equal(scaledObject.spec.triggers[0].metadata.queueURL, stackOutputs.queueUrl);
      assert.equal(
        all('HorizontalPodAutoscaler').filter((hpa) => hpa.metadata.name.endsWith('-consumer')).length,
        0,
        'KEDA makes the consumer HPA itself',
      );
      const auth = getManifest(manifests, 'TriggerAuthentication', '-consumer');
      assert.deepEqual(auth.spec.podIdentity, { provider: 'aws', identityOwner: 'keda' });
      if (environment === 'production') {
        // docs/performance.md plans 6-11 API pods at the API Gateway account quota.
        assert.ok(apiHpa.spec.maxReplicas >= 11);
        assert.ok(apiHpa.spec.minReplicas >= 3, 'one API pod per zone at least');
      }
    });

    test('when NetworkPolicies are enforced by the VPC CNI, then every port in them is a number', () => {
      const policies = all('NetworkPolicy');
      assert.ok(policies.length >= 5);
      for (const policy of policies) {
        const rules = [...(policy.spec.ingress ?? []), ...(policy.spec.egress ?? [])];
        for (const rule of rules) {
          for (const port of rule.ports ?? []) {
            assert.equal(typeof port.port, 'number', `${policy.metadata.name}: port ${port.port}`);
          }
        }
      }
    });

    test('when an API pod terminates, then it serves while the NLB still sends, drains, and exits within its grace period', () => {
      const deployment = getManifest(manifests, 'Deployment', '-api');
      const spec = deployment.spec.template.spec;
      const preStopSec = spec.containers[0].lifecycle.preStop.sleep.seconds;
      const drainSec = Number(getManifest(manifests, 'ConfigMap', '-api').data.SHUTDOWN_TIMEOUT_MS) / 1000;
      // NLB IP targets keep receiving new connections ~120 s after deregistration starts.
      assert.ok(preStopSec >= 120, `preStop ${preStopSec} s`);
      assert.ok(spec.terminationGracePeriodSeconds >= preStopSec + drainSec + 5);
      assert.ok(stackOutputs.targetGroupDeregistrationDelaySec >= preStopSec + drainSec);
      const binding = getManifest(manifests, 'TargetGroupBinding', '-api');
      assert.equal(binding.spec.targetGroupARN, stackOutputs.targetGroupArn);
      const consumer = getManifest(manifests, 'Deployment', '-consumer').spec.template.spec;
      const consumerDrainSec =
        Number(getManifest(manifests, 'ConfigMap', '-consumer').data.SHUTDOWN_TIMEOUT_MS) / 1000;
      assert.ok(consumer.terminationGracePeriodSeconds >= consumerDrainSec + 5);
    });

    test('when pods pull the image, then by the promoted digest', () => {
      const image = getManifest(manifests, 'Deployment', '-api').spec.template.spec.containers[0].image;
      assert.match(
        image,
        /^123456789012\.dkr\.ecr\.us-east-1\.amazonaws\.com\/ingesta-prod:[0-9a-f]{40}@sha256:[0-9a-f]{64}$/,
      );
    });

    test('when the database Secret comes from Secrets Manager, then the ExternalSecret precedes the migration Job', () => {
      const externalSecret = getManifest(manifests, 'ExternalSecret');
      assert.equal(externalSecret.spec.data[0].remoteRef.key, stackOutputs.databaseUrlSecretName);
      assert.ok(getManifest(manifests, 'Job', '-migrations'));
    });
  });
}
