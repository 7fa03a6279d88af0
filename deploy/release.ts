/**
 * The one Helm command line of a release: the deploy workflow runs it (`upgrade`), the chart tests
 * render it (`template`), so what the tests check is what CI deploys.
 *
 *   node deploy/release.ts upgrade --environment production --generated-values values.generated.yaml \
 *     --image-repository 123456789012.dkr.ecr.us-east-1.amazonaws.com/ingesta-prod \
 *     --image-tag <commit> --image-digest sha256:...
 *
 * Values, later files winning: the chart defaults, the values generated from the Pulumi stack
 * outputs (infra/scripts/outputs-to-values.ts), then the environment's committed choices in
 * deploy/values/<environment>.yaml; the image is set last. `upgrade` runs `helm` from PATH (or
 * $HELM) with the rollout flags; `args` prints the command line, one word per line.
 * Node built-ins only: it runs after `npm ci --omit=dev`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const environments = ['staging', 'production'] as const;
export type Environment = (typeof environments)[number];

/** Release and namespace the stack prepares (infra: cluster.appRelease, cluster.appNamespace). */
export const releaseName = 'ingesta';
export const releaseNamespace = 'ingesta';
/** Chart path relative to the repository root. */
export const chartPath = 'charts/ingesta';

export interface ReleaseOptions {
  environment: Environment;
  /** Values file generated from the stack outputs. */
  generatedValues: string;
  imageRepository: string;
  imageTag: string;
  /** `sha256:` digest the pods pull: the image promoted, never a tag alone. */
  imageDigest: string;
  /** Helm wait timeout of an upgrade, e.g. `10m`. */
  timeout?: string;
}

/** The committed values of an environment, relative to the repository root. */
export function environmentValuesFile(environment: Environment): string {
  return `deploy/values/${environment}.yaml`;
}

/** Values files in the order Helm applies them: stack outputs first, the environment's choices over them. */
export function valuesFiles(options: Pick<ReleaseOptions, 'environment' | 'generatedValues'>): string[] {
  return [options.generatedValues, environmentValuesFile(options.environment)];
}

/** Arguments shared by `helm upgrade` and `helm template`: release, chart, namespace, values, image. */
function releaseArgs(options: ReleaseOptions): string[] {
  if (!environments.includes(options.environment)) {
    throw new Error(`unknown environment ${options.environment}: one of ${environments.join(', ')}`);
  }
  if (!/^sha256:[0-9a-f]{64}$/.test(options.imageDigest)) {
    throw new Error(`image digest ${options.imageDigest} is not sha256:<64 hex>: releases pull by digest`);
  }
  return [
    releaseName,
    chartPath,
    '--namespace',
    releaseNamespace,
    ...valuesFiles(options).flatMap((file) => ['--values', file]),
    '--set-string',
    `image.repository=${options.imageRepository}`,
    '--set-string',
    `image.tag=${options.imageTag}`,
    '--set-string',
    `image.digest=${options.imageDigest}`,
  ];
}

/** `helm upgrade --install` as the deploy workflow runs it. */
export function upgradeArgs(options: ReleaseOptions): string[] {
  return [
    'upgrade',
    ...releaseArgs(options),
    '--install',
    // Helm 4's --atomic: a failed rollout or hook (the migration Job) undoes the upgrade.
    '--rollback-on-failure',
    '--wait=watcher',
    '--timeout',
    options.timeout ?? '10m',
    '--history-max',
    '20',
  ];
}

/** `helm template` of the same release: what the upgrade would apply, for the tests. */
export function templateArgs(options: ReleaseOptions): string[] {
  return ['template', ...releaseArgs(options)];
}

function parseArgs(argv: string[]): { command: string; options: ReleaseOptions } {
  const [command = '', ...rest] = argv;
  const named: Record<string, string> = {};
  for (let i = 0; i < rest.length; i += 2) {
    const flag = rest[i] ?? '';
    const value = rest[i + 1];
    if (!flag.startsWith('--') || value === undefined) throw new Error(`expected --name value, got ${flag}`);
    named[flag.slice(2)] = value;
  }
  const required = (name: string) => {
    const value = named[name];
    if (!value) throw new Error(`--${name} is required`);
    return value;
  };
  const options: ReleaseOptions = {
    environment: required('environment') as Environment,
    generatedValues: required('generated-values'),
    imageRepository: required('image-repository'),
    imageTag: required('image-tag'),
    imageDigest: required('image-digest'),
  };
  if (named.timeout) options.timeout = named.timeout;
  return { command, options };
}

function main(): void {
  try {
    const { command, options } = parseArgs(process.argv.slice(2));
    for (const file of valuesFiles(options)) {
      if (!existsSync(resolve(repoRoot, file))) throw new Error(`values file ${file} does not exist`);
    }
    if (command === 'args') {
      process.stdout.write(`${upgradeArgs(options).join('\n')}\n`);
      return;
    }
    if (command !== 'upgrade') throw new Error(`unknown command ${command}: upgrade or args`);
    const args = upgradeArgs(options);
    process.stdout.write(`helm ${args.join(' ')}\n`);
    const result = spawnSync(process.env.HELM || 'helm', args, { stdio: 'inherit', cwd: repoRoot });
    if (result.error) throw result.error;
    process.exitCode = result.status ?? 1;
  } catch (error) {
    console.error(`release: ${(error as Error).message}`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
