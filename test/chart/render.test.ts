import assert from 'node:assert/strict';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parse } from 'yaml';
import {
  chartDir,
  findManifest,
  getManifest,
  helm,
  kubeVersion,
  type Manifest,
  parseManifests,
  podSpecs,
  render,
  renderError,
  renderManifests,
} from './support/chart.ts';

const defaults = { withCrds: false };
const production = { valuesFile: 'ci/production-values.yaml', withCrds: true };
const productionWithoutCrds = { valuesFile: 'ci/production-values.yaml', withCrds: false };
const productionValues = parse(readFileSync(join(chartDir, production.valuesFile), 'utf8'));

const container = (manifests: Manifest[], kind: string, name: string) => {
  const { spec } = getManifest(manifests, kind, name);
  return (kind === 'CronJob' ? spec.jobTemplate.spec : spec).template.spec.containers[0];
};
const envValue = (containerSpec: { env: { name: string; value?: string }[] }, name: string) =>
  containerSpec.env.find((variable) => variable.name === name);
const hookWeight = (manifest: Manifest) =>
  Number(manifest.metadata.annotations?.['helm.sh/hook-weight'] ?? 0);

describe('workloads', () => {
  test('when rendered, then the API Service carries http 8080 only and the admin port 9464 has a Service of its own', () => {
    const ports = (service: Manifest) =>
      service.spec.ports.map((port: { name: string; port: number; targetPort: string }) => [
        port.name,
        port.port,
        port.targetPort,
      ]);
    const service = getManifest(render(defaults), 'Service', '-api');
    assert.equal(service.spec.type, 'ClusterIP');
    assert.deepEqual(ports(service), [['http', 8080, 'http']], 'the admin port is never exposed here');
    const admin = getManifest(render(defaults), 'Service', '-api-admin');
    assert.deepEqual(ports(admin), [['admin', 9464, 'admin']]);
    assert.deepEqual(admin.spec.selector, service.spec.selector, 'the same pods');
    const consumerService = getManifest(render(defaults), 'Service', '-consumer');
    assert.deepEqual(consumerService.spec.ports[0], {
      name: 'admin',
      port: 9464,
      targetPort: 'admin',
      protocol: 'TCP',
    });
  });

  test('when rendered, then both Deployments run the one image with the entry points of the image layout', () => {
    const manifests = render(production);
    const image = `${productionValues.image.repository}:${productionValues.image.tag}@${productionValues.image.digest}`;
    assert.equal(container(manifests, 'Deployment', '-api').image, image);
    assert.equal(container(manifests, 'Deployment', '-consumer').image, image);
    assert.deepEqual(container(manifests, 'Deployment', '-api').command, [
      'node',
      '--import',
      './dist/platform/telemetry/register.js',
      'dist/api/main.js',
    ]);
    assert.deepEqual(container(manifests, 'Deployment', '-consumer').command, [
      'node',
      '--import',
      './dist/platform/telemetry/register.js',
      'dist/consumer/main.js',
    ]);
    assert.deepEqual(container(manifests, 'Job', '-migrations').command, [
      'node',
      'dist/db/cli.js',
      'latest',
    ]);
    assert.deepEqual(container(manifests, 'CronJob', '-maintenance').command, [
      'node',
      'dist/db/cli.js',
      'maintain',
    ]);
  });

  test('when a retention is set, then the maintenance CronJob applies it, one run at a time, in UTC', () => {
    const manifests = renderManifests(defaults, ['--set', 'maintenance.retentionDays=400']);
    const cronJob = getManifest(manifests, 'CronJob', '-maintenance');
    assert.equal(
      envValue(container(manifests, 'CronJob', '-maintenance'), 'EVENT_RETENTION_DAYS')?.value,
      '400',
    );
    assert.equal(cronJob.spec.concurrencyPolicy, 'Forbid');
    assert.equal(cronJob.spec.timeZone, 'Etc/UTC');
    assert.equal(
      envValue(container(render(defaults), 'CronJob', '-maintenance'), 'EVENT_RETENTION_DAYS')?.value,
      '0',
      'events are kept forever unless a retention is chosen',
    );
    assert.ok(
      !renderManifests(defaults, ['--set', 'maintenance.enabled=false']).some((m) => m.kind === 'CronJob'),
    );
  });

  test('when no image tag is given, then the chart appVersion is used', () => {
    const chart = parse(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8'));
    assert.equal(container(render(defaults), 'Deployment', '-api').image, `ingesta:${chart.appVersion}`);
  });

  test('when the schema is bypassed, then the template still refuses the latest tag', () => {
    const result = helm(['template', 'x', chartDir, '--skip-schema-validation', '--set', 'image.tag=latest']);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /image\.tag "latest" is not allowed/);
  });

  test('when IAM roles are given, then each ServiceAccount carries its IRSA annotation and no token automount', () => {
    const manifests = render(production);
    for (const component of ['api', 'consumer']) {
      const account = getManifest(manifests, 'ServiceAccount', `-${component}`);
      assert.equal(
        account.metadata.annotations['eks.amazonaws.com/role-arn'],
        productionValues[component].serviceAccount.roleArn,
      );
      assert.equal(account.automountServiceAccountToken, false);
      assert.equal(
        getManifest(manifests, 'Deployment', `-${component}`).spec.template.spec.serviceAccountName,
        account.metadata.name,
      );
    }
    assert.equal(getManifest(render(defaults), 'ServiceAccount', '-api').metadata.annotations, undefined);
  });

  test('when rendered, then DATABASE_URL comes from the existing Secret and appears in no ConfigMap', () => {
    const manifests = render(production);
    for (const source of podSpecs(manifests).filter((pod) => !pod.owner.endsWith('-test'))) {
      const variable = source.spec.containers[0].env.find(
        (env: { name: string }) => env.name === 'DATABASE_URL',
      );
      assert.deepEqual(variable.valueFrom, {
        secretKeyRef: { name: productionValues.database.existingSecret.name, key: 'DATABASE_URL' },
      });
    }
    for (const configMap of manifests.filter((manifest) => manifest.kind === 'ConfigMap')) {
      assert.equal(configMap.data.DATABASE_URL, undefined);
    }
  });

  test('when traces are exported, then new traces are sampled at telemetry.sampleRatio, parent-based', () => {
    const otel = (manifests: Manifest[], component: string) => {
      const { data } = getManifest(manifests, 'ConfigMap', `-${component}`);
      return [data.OTEL_TRACES_EXPORTER, data.OTEL_TRACES_SAMPLER, data.OTEL_TRACES_SAMPLER_ARG];
    };
    for (const component of ['api', 'consumer']) {
      assert.deepEqual(otel(render(production), component), ['otlp', 'parentbased_traceidratio', '0.1']);
      assert.deepEqual(
        otel(render(defaults), component),
        ['none', undefined, undefined],
        'no export, no sampler',
      );
    }
    const everything = renderManifests(defaults, [
      '--set',
      'telemetry.otlpEndpoint=http://collector:4318,telemetry.sampleRatio=1',
    ]);
    assert.deepEqual(otel(everything, 'api'), ['otlp', 'parentbased_traceidratio', '1']);
    assert.match(
      renderError(defaults, ['--set', 'telemetry.sampleRatio=1.5']),
      /sampleRatio/,
      'a ratio above 1 is refused',
    );
  });

  test('when a configuration value changes, then the pod template checksum changes and the pods roll', () => {
    const checksum = (manifests: Manifest[], name: string) =>
      getManifest(manifests, 'Deployment', name).spec.template.metadata.annotations['checksum/config'];
    const changed = renderManifests(defaults, ['--set', 'logLevel=debug']);
    assert.notEqual(checksum(changed, '-api'), checksum(render(defaults), '-api'));
    assert.notEqual(checksum(changed, '-consumer'), checksum(render(defaults), '-consumer'));
    assert.equal(checksum(renderManifests(defaults), '-api'), checksum(render(defaults), '-api'));
  });

  test('when rendered, then probes hit /livez and /readyz on the admin port the app listens on', () => {
    const manifests = render(defaults);
    for (const component of ['api', 'consumer']) {
      const spec = container(manifests, 'Deployment', `-${component}`);
      assert.deepEqual(spec.startupProbe.httpGet, { path: '/livez', port: 'admin' });
      assert.deepEqual(spec.livenessProbe.httpGet, { path: '/livez', port: 'admin' });
      assert.deepEqual(spec.readinessProbe.httpGet, { path: '/readyz', port: 'admin' });
      const adminPort = spec.ports.find((port: { name: string }) => port.name === 'admin').containerPort;
      const configMap = getManifest(manifests, 'ConfigMap', `-${component}`);
      assert.equal(configMap.data.ADMIN_PORT, String(adminPort));
    }
  });

  test('when rendered, then the grace period covers the preStop sleep plus the shutdown timeout', () => {
    const manifests = render(production);
    for (const component of ['api', 'consumer']) {
      const deployment = getManifest(manifests, 'Deployment', `-${component}`);
      const spec = deployment.spec.template.spec;
      const sleepSeconds = spec.containers[0].lifecycle?.preStop?.sleep?.seconds ?? 0;
      const timeoutMs = Number(getManifest(manifests, 'ConfigMap', `-${component}`).data.SHUTDOWN_TIMEOUT_MS);
      assert.ok(spec.terminationGracePeriodSeconds >= sleepSeconds + timeoutMs / 1000 + 5, component);
      assert.equal(spec.containers[0].lifecycle?.preStop?.exec, undefined, 'no shell in the image');
    }
    const api = container(manifests, 'Deployment', '-api');
    assert.deepEqual(api.lifecycle.preStop, { sleep: { seconds: 130 } });
  });

  test('when memory limits are set, then NODE_OPTIONS sizes the heap at 75 % of the limit', () => {
    assert.equal(
      envValue(container(render(defaults), 'Deployment', '-api'), 'NODE_OPTIONS')?.value,
      '--max-old-space-size=576',
    );
    assert.equal(
      envValue(container(render(production), 'Deployment', '-consumer'), 'NODE_OPTIONS')?.value,
      '--max-old-space-size=768',
    );
    const sized = renderManifests(defaults, [
      '--set',
      'api.resources.limits.memory=1.5Gi,heapPercentOfMemoryLimit=50',
    ]);
    assert.equal(
      envValue(container(sized, 'Deployment', '-api'), 'NODE_OPTIONS')?.value,
      '--max-old-space-size=768',
    );
    const bytes = renderManifests(defaults, ['--set-string', 'api.resources.limits.memory=1073741824']);
    assert.equal(
      envValue(container(bytes, 'Deployment', '-api'), 'NODE_OPTIONS')?.value,
      '--max-old-space-size=768',
    );
  });

  test('when rendered, then pods spread across zones and nodes and have disruption budgets', () => {
    const manifests = render(defaults);
    for (const component of ['api', 'consumer']) {
      const spec = getManifest(manifests, 'Deployment', `-${component}`).spec.template.spec;
      assert.deepEqual(
        spec.topologySpreadConstraints.map((constraint: { topologyKey: string }) => constraint.topologyKey),
        ['topology.kubernetes.io/zone', 'kubernetes.io/hostname'],
      );
      const budget = getManifest(manifests, 'PodDisruptionBudget', `-${component}`);
      assert.equal(budget.spec.maxUnavailable, 1);
      assert.deepEqual(
        budget.spec.selector.matchLabels,
        getManifest(manifests, 'Deployment', `-${component}`).spec.selector.matchLabels,
      );
    }
  });
});

describe('autoscaling', () => {
  test('when autoscaling is on, then the API has an HPA and its Deployment leaves replicas to it', () => {
    const manifests = render(production);
    const hpa = getManifest(manifests, 'HorizontalPodAutoscaler', '-api');
    assert.equal(hpa.spec.scaleTargetRef.name, getManifest(manifests, 'Deployment', '-api').metadata.name);
    assert.equal(hpa.spec.minReplicas, productionValues.api.autoscaling.minReplicas);
    assert.equal(getManifest(manifests, 'Deployment', '-api').spec.replicas, undefined);
    assert.equal(getManifest(render(defaults), 'Deployment', '-api').spec.replicas, 2);
  });

  test('when KEDA is installed, then the consumer scales on SQS depth through a ScaledObject and no HPA', () => {
    const manifests = render(production);
    const scaledObject = getManifest(manifests, 'ScaledObject', '-consumer');
    assert.equal(
      scaledObject.spec.scaleTargetRef.name,
      getManifest(manifests, 'Deployment', '-consumer').metadata.name,
    );
    const [trigger] = scaledObject.spec.triggers;
    assert.equal(trigger.type, 'aws-sqs-queue');
    assert.equal(trigger.metadata.queueURL, productionValues.aws.queueUrl);
    assert.equal(trigger.metadata.queueLength, '200');
    const auth = getManifest(manifests, 'TriggerAuthentication', '-consumer');
    assert.equal(trigger.authenticationRef.name, auth.metadata.name);
    assert.deepEqual(auth.spec.podIdentity, { provider: 'aws', identityOwner: 'keda' });
    assert.equal(findManifest(manifests, 'HorizontalPodAutoscaler', '-consumer'), undefined);
  });

  test('when KEDA is not installed, then the consumer falls back to a CPU HPA', () => {
    const manifests = render(productionWithoutCrds);
    assert.equal(findManifest(manifests, 'ScaledObject'), undefined);
    assert.equal(findManifest(manifests, 'TriggerAuthentication'), undefined);
    const hpa = getManifest(manifests, 'HorizontalPodAutoscaler', '-consumer');
    assert.equal(hpa.spec.metrics[0].resource.name, 'cpu');
  });

  test('when KEDA is forced, then the ScaledObject renders without the CRD', () => {
    const manifests = renderManifests(productionWithoutCrds, [
      '--set',
      'consumer.autoscaling.keda.force=true',
    ]);
    assert.ok(findManifest(manifests, 'ScaledObject', '-consumer'));
  });

  test('when KEDA should assume a role, then the TriggerAuthentication names it instead of an identity owner', () => {
    const roleArn = 'arn:aws:iam::123456789012:role/keda-reader';
    const manifests = renderManifests(production, ['--set', `consumer.autoscaling.keda.roleArn=${roleArn}`]);
    assert.deepEqual(getManifest(manifests, 'TriggerAuthentication').spec.podIdentity, {
      provider: 'aws',
      roleArn,
    });
  });
});

describe('API Gateway VPC link target', () => {
  test('when a target group ARN is given, then a TargetGroupBinding binds API pod IPs on the http port (8080)', () => {
    const manifests = render(production);
    const binding = getManifest(manifests, 'TargetGroupBinding', '-api');
    assert.equal(binding.apiVersion, 'elbv2.k8s.aws/v1beta1');
    assert.equal(binding.spec.targetGroupARN, productionValues.api.targetGroupBinding.targetGroupArn);
    assert.equal(binding.spec.targetType, 'ip');
    const service = getManifest(manifests, 'Service', '-api');
    assert.equal(binding.spec.serviceRef.name, service.metadata.name);
    const servicePort = service.spec.ports.find(
      (port: { name: string }) => port.name === binding.spec.serviceRef.port,
    );
    const containerPort = container(manifests, 'Deployment', '-api').ports.find(
      (port: { name: string }) => port.name === servicePort.targetPort,
    );
    assert.equal(containerPort.containerPort, 8080);
  });

  test('when no target group ARN is given, then no TargetGroupBinding is rendered', () => {
    assert.equal(findManifest(render(defaults), 'TargetGroupBinding'), undefined);
  });
});

describe('migrations and other hooks', () => {
  test('when rendered, then migrations run as a pre-install,pre-upgrade Job with backoff, deadline and delete policy', () => {
    const job = getManifest(render(production), 'Job', '-migrations');
    assert.equal(job.metadata.annotations['helm.sh/hook'], 'pre-install,pre-upgrade');
    assert.equal(
      job.metadata.annotations['helm.sh/hook-delete-policy'],
      'before-hook-creation,hook-succeeded',
    );
    assert.equal(job.spec.backoffLimit, 2);
    assert.equal(job.spec.activeDeadlineSeconds, 600);
    assert.equal(job.spec.template.spec.restartPolicy, 'Never');
  });

  test('when hooks run at pre-install, then they use nothing the release creates later', () => {
    for (const scenario of [defaults, production]) {
      const manifests = render(scenario);
      const isPreInstallHook = (manifest: Manifest) =>
        (manifest.metadata.annotations?.['helm.sh/hook'] ?? '').split(',').includes('pre-install');
      const releaseObjects = new Set(
        manifests
          .filter((manifest) => !manifest.metadata.annotations?.['helm.sh/hook'])
          .map((m) => `${m.kind}/${m.metadata.name}`),
      );
      const hooks = manifests.filter(isPreInstallHook);
      for (const job of hooks.filter((manifest) => manifest.kind === 'Job')) {
        const spec = job.spec.template.spec;
        const references = [`ServiceAccount/${spec.serviceAccountName ?? 'default'}`];
        for (const containerSpec of spec.containers) {
          for (const source of containerSpec.envFrom ?? []) {
            if (source.configMapRef) references.push(`ConfigMap/${source.configMapRef.name}`);
            if (source.secretRef) references.push(`Secret/${source.secretRef.name}`);
          }
          for (const variable of containerSpec.env ?? []) {
            const from = variable.valueFrom ?? {};
            if (from.configMapKeyRef) references.push(`ConfigMap/${from.configMapKeyRef.name}`);
            if (from.secretKeyRef) references.push(`Secret/${from.secretKeyRef.name}`);
          }
        }
        for (const volume of spec.volumes ?? []) {
          if (volume.configMap) references.push(`ConfigMap/${volume.configMap.name}`);
          if (volume.secret) references.push(`Secret/${volume.secret.secretName}`);
        }
        assert.deepEqual(
          references.filter((reference) => releaseObjects.has(reference)),
          [],
        );
        // Whatever the Job needs from its own hooks is created first (lower weight).
        for (const reference of references) {
          const [kind, name] = reference.split('/');
          const dependency = hooks.find((hook) => hook.kind === kind && hook.metadata.name === name);
          if (dependency) assert.ok(hookWeight(dependency) < hookWeight(job), reference);
        }
      }
    }
  });

  test('when the ExternalSecret is enabled, then it is a hook ahead of the migration Job and orphans its Secret', () => {
    const manifests = render(production);
    const externalSecret = getManifest(manifests, 'ExternalSecret');
    const job = getManifest(manifests, 'Job', '-migrations');
    assert.equal(externalSecret.metadata.annotations['helm.sh/hook'], 'pre-install,pre-upgrade');
    assert.ok(
      hookWeight(externalSecret) < hookWeight(getManifest(manifests, 'ServiceAccount', '-migrations')),
    );
    assert.ok(hookWeight(externalSecret) < hookWeight(job));
    assert.equal(externalSecret.spec.target.name, productionValues.database.existingSecret.name);
    assert.equal(externalSecret.spec.target.creationPolicy, 'Orphan');
    assert.deepEqual(externalSecret.spec.data, [
      { secretKey: 'DATABASE_URL', remoteRef: { key: 'ingesta/prod/database', property: 'url' } },
    ]);
    assert.equal(findManifest(render(productionWithoutCrds), 'ExternalSecret'), undefined);
  });

  test('when auth is on and no token is configured, then the helm test pod expects a 401 problem; with a token, a 200', () => {
    const expected = (manifests: Manifest[]) => {
      const pod = getManifest(manifests, 'Pod', '-test');
      assert.equal(pod.metadata.annotations['helm.sh/hook'], 'test');
      assert.deepEqual(pod.spec.containers[0].command.slice(0, 3), ['node', '--input-type=module', '-e']);
      return envValue(pod.spec.containers[0], 'INGESTA_TEST_EXPECTED_EVENTS_STATUS')?.value;
    };
    assert.equal(expected(render(defaults)), '401');
    assert.equal(expected(render(production)), '200');
    assert.equal(expected(renderManifests(defaults, ['--set', 'auth.disabled=true'])), '200');
  });
});

describe('network policies', () => {
  test('when enabled, then a default deny covers every pod of the release', () => {
    const manifests = render(defaults);
    const deny = getManifest(manifests, 'NetworkPolicy', '-default-deny');
    assert.deepEqual(deny.spec.policyTypes, ['Ingress', 'Egress']);
    assert.equal(deny.spec.ingress, undefined);
    assert.equal(deny.spec.egress, undefined);
    for (const { spec, owner } of podSpecs(manifests)) {
      const workload = manifests.find((m) => `${m.kind}/${m.metadata.name}` === owner)!;
      const labels = owner.startsWith('Pod/')
        ? getManifest(manifests, 'Pod').metadata.labels
        : (workload.kind === 'CronJob' ? workload.spec.jobTemplate.spec : workload.spec).template.metadata
            .labels;
      for (const [key, value] of Object.entries(deny.spec.podSelector.matchLabels)) {
        assert.equal(labels[key], value, `${owner} escapes the default deny`);
      }
      assert.ok(spec);
    }
  });

  test('when CIDRs are given, then the API admits the load balancer on http and its health check on admin', () => {
    const policy = getManifest(render(production), 'NetworkPolicy', '-api');
    const [loadBalancer, monitoring, helmTest] = policy.spec.ingress;
    assert.deepEqual(loadBalancer, {
      from: [{ ipBlock: { cidr: '10.40.0.0/16' } }],
      ports: [
        { protocol: 'TCP', port: 8080 },
        { protocol: 'TCP', port: 9464 },
      ],
    });
    const trafficOnly = renderManifests(production, ['--set', 'networkPolicy.loadBalancerPorts={http}']);
    assert.deepEqual(getManifest(trafficOnly, 'NetworkPolicy', '-api').spec.ingress[0].ports, [
      { protocol: 'TCP', port: 8080 },
    ]);
    assert.deepEqual(monitoring.from[0].namespaceSelector.matchLabels, {
      'kubernetes.io/metadata.name': 'monitoring',
    });
    assert.deepEqual(monitoring.ports, [{ protocol: 'TCP', port: 9464 }]);
    assert.equal(helmTest.from[0].podSelector.matchLabels['app.kubernetes.io/component'], 'test');
  });

  test('when rendered, then app egress is DNS, PostgreSQL on 5432, AWS on 443 and the extra rules', () => {
    const policy = getManifest(render(production), 'NetworkPolicy', '-consumer');
    const ports = policy.spec.egress.map((rule: { ports: { port: number }[] }) =>
      rule.ports.map((port) => port.port),
    );
    assert.deepEqual(ports, [[53, 53], [5432], [443], [4318]]);
    assert.deepEqual(policy.spec.egress[1].to, [{ ipBlock: { cidr: '10.40.32.0/20' } }]);
    const migrations = getManifest(render(production), 'NetworkPolicy', '-migrations');
    assert.deepEqual(
      migrations.spec.egress.map((rule: { ports: { port: number }[] }) =>
        rule.ports.map((port) => port.port),
      ),
      [[53, 53], [5432]],
    );
  });

  test('when no database CIDRs are given, then PostgreSQL egress uses the VPC CIDRs of the load balancer', () => {
    const manifests = renderManifests(defaults, ['--set', 'networkPolicy.loadBalancerCidrs={10.1.0.0/16}']);
    const policy = getManifest(manifests, 'NetworkPolicy', '-api');
    const database = policy.spec.egress.find(
      (rule: { ports: { port: number }[] }) => rule.ports[0]?.port === 5432,
    );
    assert.deepEqual(database.to, [{ ipBlock: { cidr: '10.1.0.0/16' } }]);
  });

  test('when disabled, then no NetworkPolicy is rendered', () => {
    const manifests = renderManifests(defaults, ['--set', 'networkPolicy.enabled=false']);
    assert.equal(findManifest(manifests, 'NetworkPolicy'), undefined);
  });
});

describe('monitoring objects', () => {
  const fixtureChart = mkdtempSync(join(tmpdir(), 'ingesta-chart-'));
  after(() => rmSync(fixtureChart, { recursive: true, force: true }));
  const rules = {
    groups: [
      {
        name: 'ingesta-fixture',
        rules: [
          {
            alert: 'IngestaFixture',
            expr: 'up{component="api"} == 0',
            for: '5m',
            labels: { severity: 'page' },
            annotations: { summary: '{{ $labels.pod }} is down' },
          },
        ],
      },
    ],
  };

  /** The chart with its own files replaced by known fixtures (the real ones are owned elsewhere). */
  function renderFixtureChart(extra: string[]): Manifest[] {
    const chart = join(fixtureChart, 'ingesta');
    if (!existsSync(chart)) {
      cpSync(chartDir, chart, { recursive: true });
      writeFileSync(join(chart, 'files', 'prometheus-rules.yaml'), JSON.stringify(rules));
      rmSync(join(chart, 'files', 'dashboards'), { recursive: true, force: true });
      mkdirSync(join(chart, 'files', 'dashboards'));
      writeFileSync(
        join(chart, 'files', 'dashboards', 'ingesta_overview.json'),
        '{"title": "ingesta fixture"}',
      );
    }
    const result = helm(['template', 'ingesta', chart, '--kube-version', kubeVersion, ...extra]);
    assert.equal(result.status, 0, result.stderr);
    return parseManifests(result.stdout);
  }

  test('when the Prometheus Operator is installed, then a ServiceMonitor scrapes /metrics on both admin ports', () => {
    const monitor = getManifest(render(production), 'ServiceMonitor');
    assert.deepEqual(monitor.spec.endpoints[0].port, 'admin');
    assert.deepEqual(monitor.spec.endpoints[0].path, '/metrics');
    assert.deepEqual(monitor.spec.selector.matchExpressions[0].values, ['api', 'consumer']);
    assert.equal(monitor.metadata.labels.release, 'kube-prometheus-stack');
    const matches = (service: Manifest) =>
      Object.entries(monitor.spec.selector.matchLabels).every(
        ([key, value]) => service.metadata.labels[key] === value,
      );
    for (const name of ['-api-admin', '-consumer']) {
      assert.ok(matches(getManifest(render(production), 'Service', name)), `the monitor selects *${name}`);
    }
    assert.equal(
      matches(getManifest(render(production), 'Service', '-api')),
      false,
      'not the traffic Service',
    );
  });

  test('when the Prometheus Operator is absent, then no ServiceMonitor or PrometheusRule is rendered unless forced', () => {
    assert.equal(findManifest(render(productionWithoutCrds), 'ServiceMonitor'), undefined);
    assert.equal(findManifest(render(productionWithoutCrds), 'PrometheusRule'), undefined);
    const forced = renderManifests(productionWithoutCrds, ['--set', 'monitoring.serviceMonitor.force=true']);
    assert.ok(findManifest(forced, 'ServiceMonitor'));
  });

  test('when a rules file exists, then the PrometheusRule carries its groups unchanged, alert templates included', () => {
    const manifests = renderFixtureChart(['--api-versions', 'monitoring.coreos.com/v1/PrometheusRule']);
    assert.deepEqual(getManifest(manifests, 'PrometheusRule').spec.groups, rules.groups);
  });

  test('when the chart ships its rules file, then the PrometheusRule renders its groups', (t) => {
    const rulesFile = join(chartDir, 'files', 'prometheus-rules.yaml');
    if (!existsSync(rulesFile)) {
      t.skip('files/prometheus-rules.yaml is not written yet');
      return;
    }
    const groups = parse(readFileSync(rulesFile, 'utf8')).groups;
    assert.deepEqual(getManifest(render(production), 'PrometheusRule').spec.groups, groups);
  });

  test('when runbookBaseUrl is set, then every alert links its runbook there, by alert name', () => {
    const manifests = renderManifests(production, [
      '--set',
      'monitoring.prometheusRule.runbookBaseUrl=https://wiki.example.com/ingesta/runbooks/',
    ]);
    const alerts = (
      getManifest(manifests, 'PrometheusRule').spec.groups as {
        rules: { alert?: string; annotations?: { runbook_url?: string } }[];
      }[]
    )
      .flatMap((group) => group.rules)
      .filter((rule) => rule.alert);
    assert.ok(alerts.length > 0);
    for (const rule of alerts) {
      assert.equal(
        rule.annotations?.runbook_url,
        `https://wiki.example.com/ingesta/runbooks/${rule.alert}.md`,
      );
    }
  });

  test('when the chart ships dashboards, then every one of them is rendered as a ConfigMap', () => {
    const dashboardsDir = join(chartDir, 'files', 'dashboards');
    const files = existsSync(dashboardsDir)
      ? readdirSync(dashboardsDir).filter((file) => file.endsWith('.json'))
      : [];
    const rendered = render(defaults)
      .filter(
        (manifest) => manifest.kind === 'ConfigMap' && manifest.metadata.labels?.grafana_dashboard === '1',
      )
      .flatMap((configMap) => Object.keys(configMap.data));
    assert.deepEqual(rendered.sort(), files.sort());
  });

  test('when dashboards exist, then each becomes a ConfigMap labelled for the Grafana sidecar', () => {
    const manifests = renderFixtureChart([]);
    const dashboards = manifests.filter((manifest) => manifest.metadata.name.includes('-dashboard-'));
    assert.equal(dashboards.length, 1);
    const dashboard = getManifest(manifests, 'ConfigMap', '-dashboard-ingesta-overview');
    assert.equal(dashboard.metadata.labels.grafana_dashboard, '1');
    assert.deepEqual(JSON.parse(dashboard.data['ingesta_overview.json']), { title: 'ingesta fixture' });
    const disabled = renderFixtureChart(['--set', 'monitoring.dashboards.enabled=false']);
    assert.equal(findManifest(disabled, 'ConfigMap', '-dashboard-ingesta-overview'), undefined);
  });
});
