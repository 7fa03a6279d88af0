/**
 * Renders a release exactly as the deploy workflow installs it: values generated from the stack
 * outputs by infra/scripts/outputs-to-values.ts (as the cluster-access action runs it), then
 * deploy/values/<environment>.yaml, through deploy/release.ts's own command line, with the API
 * versions of the controllers the stack installs.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Environment, templateArgs } from '../../../deploy/release.ts';
import { outputsToValues, toYaml } from '../../../infra/scripts/outputs-to-values.ts';
import { crdApiVersions, helm, kubeVersion, type Manifest, parseManifests } from './chart.ts';

/** A sample of `pulumi stack output --json` for the production stack (shape of infra/index.ts's exports). */
export const stackOutputs = {
  awsRegion: 'us-east-1',
  clusterName: 'ingesta-prod',
  ecrRepositoryUrl: '123456789012.dkr.ecr.us-east-1.amazonaws.com/ingesta-prod',
  topicArn: 'arn:aws:sns:us-east-1:123456789012:ingesta-prod-events',
  queueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/ingesta-prod-events',
  dlqUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/ingesta-prod-events-dlq',
  apiRoleArn: 'arn:aws:iam::123456789012:role/ingesta-prod-api',
  consumerRoleArn: 'arn:aws:iam::123456789012:role/ingesta-prod-consumer',
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
  tokenUrl: 'https://auth.example.com/oauth2/token',
  apiUrl: 'https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com',
  kubeconfig: '[secret]',
};

export const imageTag = '0123456789abcdef0123456789abcdef01234567';
export const imageDigest = `sha256:${'ab'.repeat(32)}`;

const renders = new Map<Environment, Manifest[]>();

/** The objects `helm upgrade` would apply for an environment (rendered once per test process). */
export function renderRelease(environment: Environment): Manifest[] {
  const cached = renders.get(environment);
  if (cached) return cached;
  const directory = mkdtempSync(join(tmpdir(), 'ingesta-release-'));
  const generatedValues = join(directory, 'values.generated.yaml');
  // The cluster-access action runs outputs-to-values with --external-secret.
  writeFileSync(generatedValues, toYaml(outputsToValues(stackOutputs, { externalSecret: true })));
  const args = [
    ...templateArgs({
      environment,
      generatedValues,
      imageRepository: stackOutputs.ecrRepositoryUrl,
      imageTag,
      imageDigest,
    }),
    '--kube-version',
    kubeVersion,
    ...crdApiVersions.flatMap((apiVersion) => ['--api-versions', apiVersion]),
  ];
  const result = helm(args);
  if (result.status !== 0) throw new Error(`helm ${args.join(' ')} failed: ${result.stderr}`);
  const manifests = parseManifests(result.stdout);
  renders.set(environment, manifests);
  return manifests;
}
