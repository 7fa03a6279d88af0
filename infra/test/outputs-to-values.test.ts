import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { MissingOutputsError, outputsToValues, toYaml } from '../scripts/outputs-to-values.ts';

const script = fileURLToPath(new URL('../scripts/outputs-to-values.ts', import.meta.url));

const outputs = {
  awsRegion: 'us-east-1',
  clusterName: 'ingesta-prod',
  ecrRepositoryUrl: '123456789012.dkr.ecr.us-east-1.amazonaws.com/ingesta-prod',
  topicArn: 'arn:aws:sns:us-east-1:123456789012:ingesta-prod-events',
  queueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/ingesta-prod-events',
  dlqUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/ingesta-prod-events-dlq',
  apiRoleArn: 'arn:aws:iam::123456789012:role/ingesta-prod-api',
  consumerRoleArn: 'arn:aws:iam::123456789012:role/ingesta-prod-consumer',
  replayTargets: [
    'https://sqs.us-east-1.amazonaws.com/123456789012/orders-backfill',
    'arn:aws:sns:us-east-1:123456789012:orders-replay',
  ],
  targetGroupArn:
    'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/ingesta-prod-api/0123456789abcdef',
  targetGroupDeregistrationDelaySec: 150,
  vpcCidr: '10.41.0.0/16',
  databaseSecretName: 'ingesta-database',
  databaseSecretKey: 'DATABASE_URL',
  databaseUrlSecretName: 'ingesta/prod/database',
  databaseUrlSecretProperty: 'url',
  databaseSecretStore: 'aws-secrets-manager',
  authIssuer: 'https://auth.example.com/',
  authAudience: 'https://events.example.com',
  authJwksUrl: 'https://auth.example.com/.well-known/jwks.json',
  kubeconfig: '[secret]',
};

/** The chart keys the preamble lists as coming from the stack, exactly. */
const chartKeys = [
  'api.serviceAccount.roleArn',
  'api.targetGroupBinding.deregistrationDelaySeconds',
  'api.targetGroupBinding.targetGroupArn',
  'auth.audience',
  'auth.issuer',
  'auth.jwksUrl',
  'aws.dlqUrl',
  'aws.queueUrl',
  'aws.region',
  'aws.topicArn',
  'consumer.serviceAccount.roleArn',
  'database.existingSecret.key',
  'database.existingSecret.name',
  'image.digest',
  'image.repository',
  'image.tag',
  'networkPolicy.loadBalancerCidrs',
  'replay.targets',
];

function leafKeys(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [prefix];
  return Object.entries(value).flatMap(([key, child]) => leafKeys(child, prefix ? `${prefix}.${key}` : key));
}

function run(args: string[], input?: string) {
  return spawnSync(process.execPath, [script, ...args], { input, encoding: 'utf8' });
}

describe('outputs-to-values', () => {
  test('when every output is there, then the values hold exactly the chart keys with the stack values', () => {
    const result = run(['--image-tag', '1.4.2', '--image-digest', 'sha256:abc'], JSON.stringify(outputs));
    assert.equal(result.status, 0, result.stderr);
    const values = parse(result.stdout);
    assert.deepEqual(leafKeys(values).sort(), chartKeys);
    assert.deepEqual(values, {
      image: { repository: outputs.ecrRepositoryUrl, tag: '1.4.2', digest: 'sha256:abc' },
      aws: {
        region: 'us-east-1',
        topicArn: outputs.topicArn,
        queueUrl: outputs.queueUrl,
        dlqUrl: outputs.dlqUrl,
      },
      database: { existingSecret: { name: 'ingesta-database', key: 'DATABASE_URL' } },
      auth: { issuer: outputs.authIssuer, audience: outputs.authAudience, jwksUrl: outputs.authJwksUrl },
      api: {
        serviceAccount: { roleArn: outputs.apiRoleArn },
        targetGroupBinding: { targetGroupArn: outputs.targetGroupArn, deregistrationDelaySeconds: 150 },
      },
      consumer: { serviceAccount: { roleArn: outputs.consumerRoleArn } },
      replay: { targets: outputs.replayTargets },
      networkPolicy: { loadBalancerCidrs: ['10.41.0.0/16'] },
    });
  });

  test('when a stack predates replays, then its values allow no replay target', () => {
    const { replayTargets: _targets, ...older } = outputs;
    assert.deepEqual((outputsToValues(older, { externalSecret: true }) as { replay: unknown }).replay, {
      targets: [],
    });
  });

  test('when the values are generated, then every key exists in the chart with the same type', () => {
    const chart = parse(readFileSync(new URL('../../charts/ingesta/values.yaml', import.meta.url), 'utf8'));
    const values = outputsToValues(outputs, { externalSecret: true });
    for (const key of leafKeys(values)) {
      const chartValue = key
        .split('.')
        .reduce<unknown>((node, part) => (node as Record<string, unknown>)?.[part], chart);
      assert.notEqual(chartValue, undefined, `charts/ingesta/values.yaml has no ${key}`);
      const generated = key
        .split('.')
        .reduce<unknown>((node, part) => (node as Record<string, unknown>)[part], values);
      assert.equal(Array.isArray(generated), Array.isArray(chartValue), key);
      assert.equal(typeof generated, typeof chartValue, key);
    }
  });

  test('when outputs are read from a file, then the result is the same as from stdin', () => {
    const dir = mkdtempSync(join(tmpdir(), 'outputs-'));
    try {
      const file = join(dir, 'outputs.json');
      writeFileSync(file, JSON.stringify(outputs));
      const fromFile = run([file]);
      const fromStdin = run(['-'], JSON.stringify(outputs));
      assert.equal(fromFile.status, 0, fromFile.stderr);
      assert.equal(fromFile.stdout, fromStdin.stdout);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('when outputs are missing, empty or secret, then it exits 1 naming each of them', () => {
    const { topicArn: _topic, ...withoutTopic } = outputs;
    const result = run([], JSON.stringify({ ...withoutTopic, queueUrl: '', vpcCidr: '[secret]' }));
    assert.equal(result.status, 1);
    assert.equal(result.stdout, '');
    assert.match(
      result.stderr,
      /^outputs-to-values: stack outputs lack topicArn, queueUrl, vpcCidr: run `pulumi up`/,
    );
  });

  test('when the input is not JSON, then it exits 1 saying what it expects', () => {
    const result = run([], 'Current stack is prod');
    assert.equal(result.status, 1);
    assert.match(result.stderr, /input is not JSON: pass the output of `pulumi stack output --json`/);
  });

  test('when an option is unknown, then it exits 1 and names it', () => {
    const result = run(['--tag', 'x'], JSON.stringify(outputs));
    assert.equal(result.status, 1);
    assert.match(result.stderr, /unknown option --tag/);
  });

  test('when --external-secret is given, then the ExternalSecret reads the URL secret through the store', () => {
    const values = outputsToValues(outputs, { externalSecret: true }) as { database: unknown };
    assert.deepEqual(values.database, {
      existingSecret: { name: 'ingesta-database', key: 'DATABASE_URL' },
      externalSecret: {
        enabled: true,
        secretStoreRef: { kind: 'ClusterSecretStore', name: 'aws-secrets-manager' },
        remoteKey: 'ingesta/prod/database',
        remoteProperty: 'url',
      },
    });
    assert.throws(
      () => outputsToValues({ ...outputs, databaseSecretStore: '' }, { externalSecret: true }),
      (error: unknown) =>
        error instanceof MissingOutputsError && error.missing.join() === 'databaseSecretStore',
    );
  });

  test('when a value holds YAML-special characters, then the YAML reads back the same string', () => {
    const tricky = { a: 'x: "y" # z', b: ['- item', "it's"], c: { d: 'line\nbreak' } };
    assert.deepEqual(parse(toYaml(tricky)), tricky);
  });
});
