/**
 * Loads the GitHub Actions workflows and local composite actions as YAML documents, keeping
 * comments (the version written after each pinned SHA) and line numbers for messages.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isScalar, LineCounter, parseDocument, visit } from 'yaml';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export type Permissions = string | Record<string, string>;

export interface Step {
  id?: string;
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
  shell?: string;
  'working-directory'?: string;
}

export interface Job {
  name?: string;
  'runs-on'?: string;
  needs?: string | string[];
  if?: string;
  uses?: string;
  with?: Record<string, unknown>;
  secrets?: Record<string, unknown> | string;
  permissions?: Permissions;
  environment?: string | { name: string; url?: string };
  concurrency?: string | { group: string; 'cancel-in-progress'?: boolean | string };
  services?: Record<string, { image: string; env?: Record<string, unknown> }>;
  env?: Record<string, unknown>;
  steps?: Step[];
}

export interface Workflow {
  name?: string;
  on: Record<string, unknown>;
  permissions?: Permissions;
  env?: Record<string, unknown>;
  jobs: Record<string, Job>;
}

export interface CompositeAction {
  name: string;
  inputs?: Record<string, unknown>;
  runs: { using: string; steps: Step[] };
}

export interface YamlFile<T> {
  /** Path relative to the repository root, with forward slashes. */
  path: string;
  text: string;
  data: T;
  /** Every `uses:` value with the comment written after it and its line. */
  uses: UsesRef[];
}

export interface UsesRef {
  file: string;
  line: number;
  value: string;
  comment: string | undefined;
}

export function readYaml<T>(path: string): YamlFile<T> {
  const text = readFileSync(join(repoRoot, path), 'utf8');
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors.map(String).join('; ')}`);
  const uses: UsesRef[] = [];
  visit(doc, {
    Pair(_, pair) {
      if (!isScalar(pair.key) || pair.key.value !== 'uses' || !isScalar(pair.value)) return;
      const offset = pair.value.range?.[0] ?? 0;
      uses.push({
        file: path,
        line: lineCounter.linePos(offset).line,
        value: String(pair.value.value),
        comment: pair.value.comment?.trim(),
      });
    },
  });
  return { path, text, data: doc.toJS() as T, uses };
}

const workflowsDir = '.github/workflows';
const actionsDir = '.github/actions';

export function loadWorkflows(): YamlFile<Workflow>[] {
  return readdirSync(join(repoRoot, workflowsDir))
    .filter((name) => /\.ya?ml$/.test(name))
    .sort()
    .map((name) => readYaml<Workflow>(`${workflowsDir}/${name}`));
}

export function loadCompositeActions(): YamlFile<CompositeAction>[] {
  return readdirSync(join(repoRoot, actionsDir), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) =>
      relative(repoRoot, join(repoRoot, actionsDir, entry.name, 'action.yml')).replaceAll('\\', '/'),
    )
    .sort()
    .map((path) => readYaml<CompositeAction>(path));
}

export function workflow(name: string): Workflow {
  return readYaml<Workflow>(`${workflowsDir}/${name}`).data;
}

/** Steps a job runs, with the steps of local composite actions expanded in place. */
export function expandedSteps(job: Job): Step[] {
  return (job.steps ?? []).flatMap((step) => {
    if (!step.uses?.startsWith('./.github/actions/')) return [step];
    const action = readYaml<CompositeAction>(`${step.uses.slice(2)}/action.yml`).data;
    return [step, ...action.runs.steps];
  });
}

/** A GitHub Actions expression as written in a workflow: `gha('inputs.x')` is `${{ inputs.x }}`. */
export function gha(expression: string): string {
  return `\${{ ${expression} }}`;
}

/** The `write` scopes granted by a permissions block. */
export function writeScopes(permissions: Permissions | undefined): string[] {
  if (permissions === undefined) return [];
  if (typeof permissions === 'string') return permissions === 'write-all' ? ['write-all'] : [];
  return Object.entries(permissions)
    .filter(([, access]) => access === 'write')
    .map(([scope]) => scope);
}

export function needsOf(job: Job): string[] {
  if (job.needs === undefined) return [];
  return Array.isArray(job.needs) ? job.needs : [job.needs];
}

/** Every string anywhere inside a value (keys excluded). */
export function stringsIn(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsIn);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(stringsIn);
  return [];
}
