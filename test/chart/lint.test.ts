import assert from 'node:assert/strict';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { chartDir, exampleValuesFiles, helm, kubeVersion, renderError, repoRoot } from './support/chart.ts';

const chartPath = relative(repoRoot, chartDir);

describe('helm lint --strict', () => {
  for (const valuesFile of [undefined, ...exampleValuesFiles()]) {
    test(`when the chart is linted with ${valuesFile ?? 'its default values'}, then Helm reports no warning`, () => {
      const args = ['lint', '--strict', chartPath, '--kube-version', kubeVersion];
      if (valuesFile) args.push('--values', join(chartPath, valuesFile));
      const result = helm(args);
      assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
      assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    });
  }
});

describe('values that must not render', () => {
  const defaults = { withCrds: false };

  test('when a key is misspelled (api.replicass), then the schema rejects it', () => {
    const error = renderError(defaults, ['--set', 'api.replicass=3']);
    assert.match(error, /replicass/);
    assert.match(error, /additional propert/i);
  });

  test('when a nested key is misspelled, then the schema rejects it as well', () => {
    const error = renderError(defaults, ['--set', 'consumer.autoscaling.keda.queueLenght=5']);
    assert.match(error, /queueLenght/);
  });

  test('when a value has the wrong type, then the schema rejects it', () => {
    const error = renderError(defaults, ['--set-string', 'api.replicaCount=two']);
    assert.match(error, /replicaCount/);
  });

  test('when the image tag is latest, then rendering fails', () => {
    const error = renderError(defaults, ['--set', 'image.tag=latest']);
    assert.match(error, /tag/);
  });

  test('when the image digest is not a sha256 digest, then rendering fails', () => {
    const error = renderError(defaults, ['--set', 'image.digest=latest']);
    assert.match(error, /digest/);
  });

  test('when the grace period is shorter than preStop sleep + shutdown timeout + margin, then rendering fails', () => {
    const error = renderError(defaults, ['--set', 'api.shutdown.terminationGracePeriodSeconds=150']);
    assert.match(error, /api\.shutdown\.terminationGracePeriodSeconds is 150 but must be at least 155/);
  });

  test('when the API stops sleeping before the NLB stops opening connections to it, then rendering fails', () => {
    const bound = [
      '--set',
      'api.targetGroupBinding.targetGroupArn=arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/ingesta-api/0123456789abcdef',
    ];
    const error = renderError(defaults, [
      ...bound,
      '--set',
      'api.shutdown.preStopSleepSeconds=60,api.shutdown.terminationGracePeriodSeconds=90',
    ]);
    assert.match(
      error,
      /preStopSleepSeconds \(60\) must be at least api\.targetGroupBinding\.newConnectionsAfterDeregistrationSeconds \(120\)/,
    );
  });

  test('when the target group drops a target before its pod has drained, then rendering fails', () => {
    const bound = [
      '--set',
      'api.targetGroupBinding.targetGroupArn=arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/ingesta-api/0123456789abcdef',
    ];
    const error = renderError(defaults, [
      ...bound,
      '--set',
      'api.targetGroupBinding.deregistrationDelaySeconds=30',
    ]);
    assert.match(
      error,
      /deregistrationDelaySeconds \(30\) must be at least preStopSleepSeconds \+ timeoutMs \(150 s\)/,
    );
  });

  test('when the ExternalSecret is enabled where its CRD is missing, then rendering fails instead of leaving the migration Job waiting', () => {
    const error = renderError(defaults, [
      '--set',
      'database.externalSecret.enabled=true,database.externalSecret.remoteKey=ingesta/prod/database',
    ]);
    assert.match(error, /ExternalSecret CRD is not installed: the migration Job would wait/);
  });

  test('when the consumer shutdown timeout grows past its grace period, then rendering fails', () => {
    const error = renderError(defaults, ['--set', 'consumer.shutdown.timeoutMs=45000']);
    assert.match(error, /consumer\.shutdown\.terminationGracePeriodSeconds is 30 but must be at least 50/);
  });

  test('when the visibility timeout does not outlast the shutdown timeout, then rendering fails', () => {
    const error = renderError(defaults, [
      '--set',
      'consumer.visibilityTimeoutSec=20,consumer.shutdown.timeoutMs=20000,database.statementTimeoutMs=1000',
    ]);
    assert.match(error, /visibilityTimeoutSec \(20 s\) must exceed consumer\.shutdown\.timeoutMs/);
  });

  test('when the statement timeout is not below the shutdown timeout, then rendering fails', () => {
    const error = renderError(defaults, ['--set', 'database.statementTimeoutMs=20000']);
    assert.match(error, /statementTimeoutMs \(20000\) must be below api\.shutdown\.timeoutMs/);
  });

  test('when there are more consumer pollers than pool connections, then rendering fails', () => {
    const error = renderError(defaults, ['--set', 'consumer.pollers=12']);
    assert.match(error, /consumer\.pollers \(12\) must not exceed database\.poolMax \(10\)/);
  });

  test('when a container has no memory limit, then rendering fails (the heap is sized from it)', () => {
    const error = renderError(defaults, ['--set', 'api.resources.limits.memory=null']);
    assert.match(error, /memory/);
  });

  test('when only part of the API auth settings is given, then rendering fails', () => {
    const error = renderError(defaults, ['--set', 'auth.issuer=https://auth.example.com/']);
    assert.match(error, /auth\.issuer, auth\.audience and auth\.jwksUrl must be set together/);
  });

  test('when the ExternalSecret is enabled without a remote key, then rendering fails', () => {
    const error = renderError(defaults, [
      '--set',
      'database.externalSecret.enabled=true,database.externalSecret.force=true',
    ]);
    assert.match(error, /database\.externalSecret\.remoteKey is required/);
  });
});
