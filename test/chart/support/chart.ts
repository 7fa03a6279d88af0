import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { toolPath } from '../../../scripts/tools.ts';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const chartDir = join(repoRoot, 'charts', 'ingesta');

/** The Kubernetes version the chart is rendered for (EKS 1.33); the schemas used are 1.36's, a superset. */
export const kubeVersion = '1.33.0';
export const releaseName = 'ingesta';
export const namespace = 'ingesta';

/** API versions of the CRDs the chart can use, as `helm template --api-versions` takes them. */
export const crdApiVersions = [
  'keda.sh/v1alpha1/ScaledObject',
  'keda.sh/v1alpha1/TriggerAuthentication',
  'monitoring.coreos.com/v1/ServiceMonitor',
  'monitoring.coreos.com/v1/PrometheusRule',
  'external-secrets.io/v1/ExternalSecret',
  'elbv2.k8s.aws/v1beta1/TargetGroupBinding',
];

export interface Manifest {
  apiVersion: string;
  kind: string;
  // Rendered Kubernetes objects are checked against their schemas, not typed here.
  // biome-ignore lint/suspicious/noExplicitAny: labels, annotations and other metadata
  metadata: { name: string; [field: string]: any };
  // biome-ignore lint/suspicious/noExplicitAny: arbitrary Kubernetes object bodies
  [field: string]: any;
}

/** One way of rendering the chart: a values file (or the defaults), with or without the CRDs present. */
export interface Scenario {
  name: string;
  /** Path relative to the chart, e.g. `ci/production-values.yaml`; undefined for the chart defaults. */
  valuesFile?: string;
  withCrds: boolean;
}

/** The chart's example values files (`ci/*.yaml`), relative to the chart. */
export function exampleValuesFiles(): string[] {
  return readdirSync(join(chartDir, 'ci'))
    .filter((file) => file.endsWith('.yaml'))
    .sort()
    .map((file) => `ci/${file}`);
}

/** Defaults and every example values file, each rendered with and without the CRDs installed. */
export function scenarios(): Scenario[] {
  const files: (string | undefined)[] = [undefined, ...exampleValuesFiles()];
  return files.flatMap((valuesFile) =>
    [false, true].map((withCrds) => ({
      name: `${valuesFile ?? 'default values'} ${withCrds ? 'with' : 'without'} CRDs`,
      valuesFile,
      withCrds,
    })),
  );
}

export interface HelmResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function helm(args: string[]): HelmResult {
  const result = spawnSync(toolPath('helm'), args, { cwd: repoRoot, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (result.error) throw result.error;
  return { status: result.status ?? 1, stdout: result.stdout, stderr: result.stderr };
}

/** `helm template` arguments for a scenario plus extra flags such as `--set`. */
export function templateArgs(scenario: Omit<Scenario, 'name'>, extra: string[] = []): string[] {
  const args = ['template', releaseName, relative(repoRoot, chartDir), '--namespace', namespace];
  args.push('--kube-version', kubeVersion);
  if (scenario.valuesFile) args.push('--values', join(relative(repoRoot, chartDir), scenario.valuesFile));
  if (scenario.withCrds) for (const apiVersion of crdApiVersions) args.push('--api-versions', apiVersion);
  // Without the External Secrets CRD the chart refuses an ExternalSecret it cannot create: such a
  // cluster uses an existing Secret.
  else args.push('--set', 'database.externalSecret.enabled=false');
  return [...args, ...extra];
}

export function parseManifests(yamlText: string): Manifest[] {
  return parseAllDocuments(yamlText)
    .map((document) => {
      if (document.errors.length > 0) throw document.errors[0];
      return document.toJS() as Manifest | null;
    })
    .filter((manifest): manifest is Manifest => manifest !== null);
}

/** Renders and parses; throws with Helm's message when rendering fails. */
export function renderManifests(scenario: Omit<Scenario, 'name'>, extra: string[] = []): Manifest[] {
  const result = helm(templateArgs(scenario, extra));
  if (result.status !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  return parseManifests(result.stdout);
}

const renders = new Map<string, Manifest[]>();

/** Renders a scenario once per test process; later calls share the parsed objects (treat them as read-only). */
export function render(scenario: Omit<Scenario, 'name'>): Manifest[] {
  const key = JSON.stringify([scenario.valuesFile, scenario.withCrds]);
  let manifests = renders.get(key);
  if (!manifests) {
    manifests = renderManifests(scenario);
    renders.set(key, manifests);
  }
  return manifests;
}

/** Renders expecting failure; returns Helm's error output. */
export function renderError(scenario: Omit<Scenario, 'name'>, extra: string[]): string {
  const result = helm(templateArgs(scenario, extra));
  if (result.status === 0)
    throw new Error(`helm template succeeded with ${extra.join(' ')}; expected a failure`);
  return result.stderr;
}

export function findManifest(manifests: Manifest[], kind: string, nameSuffix = ''): Manifest | undefined {
  return manifests.find((manifest) => manifest.kind === kind && manifest.metadata.name.endsWith(nameSuffix));
}

export function getManifest(manifests: Manifest[], kind: string, nameSuffix = ''): Manifest {
  const manifest = findManifest(manifests, kind, nameSuffix);
  if (!manifest) throw new Error(`no ${kind} named *${nameSuffix} rendered`);
  return manifest;
}

/** A pod spec with where it came from: Deployments, Jobs and bare Pods (hooks, `helm test`). */
export interface PodSpecSource {
  owner: string;
  // biome-ignore lint/suspicious/noExplicitAny: a Kubernetes PodSpec
  spec: any;
}

export function podSpecs(manifests: Manifest[]): PodSpecSource[] {
  return manifests.flatMap((manifest) => {
    const owner = `${manifest.kind}/${manifest.metadata.name}`;
    if (manifest.kind === 'Pod') return [{ owner, spec: manifest.spec }];
    if (['Deployment', 'Job', 'StatefulSet', 'DaemonSet', 'ReplicaSet'].includes(manifest.kind)) {
      return [{ owner, spec: manifest.spec.template.spec }];
    }
    if (manifest.kind === 'CronJob') return [{ owner, spec: manifest.spec.jobTemplate.spec.template.spec }];
    return [];
  });
}
