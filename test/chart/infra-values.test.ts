import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { outputsToValues, toYaml } from '../../infra/scripts/outputs-to-values.ts';
import { crdApiVersions, getManifest, helm, kubeVersion, parseManifests } from './support/chart.ts';
import { validateStrict } from './support/kubernetes-schemas.ts';

/** What `pulumi stack output --json` gives for a stack (shape of infra/index.ts's exports). */
const stackOutputs = {
  awsRegion: 'eu-west-1',
  ecrRepositoryUrl: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/ingesta-prod',
  topicArn: 'arn:aws:sns:eu-west-1:123456789012:ingesta-prod-events',
  queueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/ingesta-prod-events',
  dlqUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/ingesta-prod-events-dlq',
  apiRoleArn: 'arn:aws:iam::123456789012:role/ingesta-prod-api',
  consumerRoleArn: 'arn:aws:iam::123456789012:role/ingesta-prod-consumer',
  targetGroupArn:
    'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/ingesta-prod-api/0123456789abcdef',
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
};

describe('values generated from the infra stack outputs (infra/scripts/outputs-to-values.ts)', () => {
  const directory = mkdtempSync(join(tmpdir(), 'ingesta-infra-values-'));
  after(() => rmSync(directory, { recursive: true, force: true }));

  for (const externalSecret of [false, true]) {
    const label = externalSecret ? 'with the ExternalSecret' : 'with an existing Secret';

    test(`when the chart is installed with them (${label}), then it lints and renders valid objects`, () => {
      const values = outputsToValues(stackOutputs, {
        imageTag: '0123456789abcdef0123456789abcdef01234567',
        imageDigest: `sha256:${'ab'.repeat(32)}`,
        externalSecret,
      });
      const file = join(directory, `values-${externalSecret}.yaml`);
      writeFileSync(file, toYaml(values));
      const lint = helm([
        'lint',
        '--strict',
        'charts/ingesta',
        '--values',
        file,
        '--kube-version',
        kubeVersion,
      ]);
      assert.equal(lint.status, 0, `${lint.stdout}${lint.stderr}`);
      const apiVersions = crdApiVersions.flatMap((apiVersion) => ['--api-versions', apiVersion]);
      const template = helm(['template', 'ingesta', 'charts/ingesta', '--values', file, ...apiVersions]);
      assert.equal(template.status, 0, template.stderr);
      const manifests = parseManifests(template.stdout);
      assert.deepEqual(
        manifests.flatMap((manifest) => validateStrict(manifest)),
        [],
      );
      const binding = getManifest(manifests, 'TargetGroupBinding', '-api');
      assert.equal(binding.spec.targetGroupARN, stackOutputs.targetGroupArn);
      const policy = getManifest(manifests, 'NetworkPolicy', '-api');
      assert.deepEqual(policy.spec.ingress[0].from, [{ ipBlock: { cidr: stackOutputs.vpcCidr } }]);
      assert.equal(
        manifests.some((manifest) => manifest.kind === 'ExternalSecret'),
        externalSecret,
      );
    });
  }
});
