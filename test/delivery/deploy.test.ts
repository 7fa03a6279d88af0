import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { upgradeArgs } from '../../deploy/release.ts';
import { toolPath } from '../../scripts/tools.ts';
import {
  type CompositeAction,
  expandedSteps,
  gha,
  needsOf,
  readYaml,
  repoRoot,
  type Step,
  workflow,
} from './support/workflows.ts';

const deploy = workflow('deploy.yml');
const infra = workflow('infra.yml');
const clusterAccess = readYaml<CompositeAction>('.github/actions/cluster-access/action.yml').data;

function job(name: string) {
  const found = deploy.jobs[name];
  assert.ok(found, `deploy.yml has no job ${name}`);
  return found;
}

function stepIndex(steps: Step[], predicate: (step: Step) => boolean, what: string): number {
  const index = steps.findIndex(predicate);
  assert.ok(index >= 0, `no step ${what}`);
  return index;
}

/** The shell commands of a script, continuations joined, as words with quotes removed. */
function commands(script: string): string[][] {
  return script
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) =>
      (line.match(/"[^"]*"|'[^']*'|\S+/g) ?? []).map((word) => word.replace(/^["']|["']$/g, '')),
    );
}

function helmCommand(script: string | undefined, subcommand: string): string[] {
  const found = commands(script ?? '').find((words) => words[0] === 'helm' && words[1] === subcommand);
  assert.ok(found, `no helm ${subcommand} in ${script}`);
  return found;
}

/** Every helm invocation in a script, also inside `$( )` and pipelines, as words. */
function helmCalls(script: string): string[][] {
  return commands(script).flatMap((words) => {
    const calls: string[][] = [];
    words.forEach((word, index) => {
      if (word !== 'helm' && !word.endsWith('(helm')) return;
      const end = words.findIndex((next, at) => at > index && /^(\||\|\||&&|\))$/.test(next));
      const call = ['helm', ...words.slice(index + 1, end < 0 ? undefined : end)];
      if (/^[a-z]+$/.test(call[1] ?? '')) calls.push(call);
    });
    return calls;
  });
}

/** Flags of a command, `--name=value` reduced to `--name`. */
function flags(words: string[]): string[] {
  return words.filter((word) => word.startsWith('-')).map((word) => word.split('=')[0] ?? word);
}

const deploySteps = expandedSteps(job('release'));
const upgrade = deploySteps.find((step) => step.id === 'upgrade');
const rollback = deploySteps.find((step) => step.run?.includes('helm rollback'));

describe('deploy workflow triggers', () => {
  test('when main or develop receives a push, then the deploy workflow runs, for no other branch', () => {
    const push = deploy.on.push as { branches: string[]; paths: string[] };
    assert.deepEqual([...push.branches].sort(), ['develop', 'main']);
    assert.deepEqual(Object.keys(deploy.on), ['push', 'workflow_dispatch']);
  });

  test('when someone dispatches the workflow, then it deploys or rolls back a chosen digest to a chosen environment', () => {
    const dispatch = deploy.on.workflow_dispatch as {
      inputs: Record<string, { type: string; required: boolean; options?: string[] }>;
    };
    assert.deepEqual(Object.keys(dispatch.inputs).sort(), ['digest', 'environment']);
    assert.equal(dispatch.inputs.environment?.type, 'choice');
    assert.deepEqual(dispatch.inputs.environment?.options, ['staging', 'production']);
    assert.equal(dispatch.inputs.digest?.required, true);
  });

  test('when the app, chart, infra or image recipe changes, then the paths filter lets the push through', () => {
    const { paths } = deploy.on.push as { paths: string[] };
    const buildInputs = readYaml<{ include: string[] }>('tsconfig.build.json').data.include;
    for (const expected of [
      ...buildInputs.filter((dir) => dir !== 'local').map((dir) => `${dir}/**`),
      'charts/**',
      'deploy/**',
      'infra/**',
    ]) {
      assert.ok(paths.includes(expected), `paths misses ${expected}`);
    }
    for (const file of ['Dockerfile', '.dockerignore', 'package-lock.json', 'test/delivery/smoke.ts']) {
      assert.ok(paths.includes(file), `paths misses ${file}`);
    }
  });
});

describe('deploy plan script', () => {
  const plan = job('plan').steps?.find((step) => step.id === 'plan');
  const scratch = mkdtempSync(join(tmpdir(), 'ingesta-plan-'));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  function git(repo: string, ...args: string[]): string {
    return execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], {
      cwd: repo,
      encoding: 'utf8',
    }).trim();
  }

  function runPlan(
    cwd: string,
    env: Record<string, string>,
  ): { status: number; outputs: Record<string, string> } {
    const output = join(scratch, `output-${Math.random().toString(36).slice(2)}`);
    writeFileSync(output, '');
    try {
      execFileSync('bash', ['-eo', 'pipefail', '-c', plan?.run ?? 'exit 99'], {
        cwd,
        env: { PATH: process.env.PATH ?? '', GITHUB_OUTPUT: output, ...env },
        stdio: 'pipe',
      });
    } catch (error) {
      return { status: (error as { status: number }).status, outputs: {} };
    }
    const outputs = Object.fromEntries(
      readFileSync(output, 'utf8')
        .trim()
        .split('\n')
        .map((line) => line.split('=') as [string, string]),
    );
    return { status: 0, outputs };
  }

  const repo = join(scratch, 'repo');
  mkdirSync(join(repo, 'api'), { recursive: true });
  execFileSync('git', ['init', '-q', repo]);
  writeFileSync(join(repo, 'api', 'main.ts'), 'v1');
  git(repo, 'add', '.');
  git(repo, 'commit', '-q', '-m', 'first');
  const tree = git(repo, 'rev-parse', 'HEAD^{tree}');
  const digest = `sha256:${'ab'.repeat(32)}`;

  test('when main is pushed, then production promotes; develop builds for staging', () => {
    const main = runPlan(repo, { EVENT_NAME: 'push', REF_NAME: 'main' });
    const develop = runPlan(repo, { EVENT_NAME: 'push', REF_NAME: 'develop' });
    assert.deepEqual(main.outputs, { environment: 'production', 'image-source': 'promote', tree });
    assert.deepEqual(develop.outputs, { environment: 'staging', 'image-source': 'build', tree });
  });

  test('when another branch reaches the plan, then it fails instead of picking an environment', () => {
    assert.notEqual(runPlan(repo, { EVENT_NAME: 'push', REF_NAME: 'feature/x' }).status, 0);
  });

  test('when a digest is dispatched, then it is deployed as given to the chosen environment, and a malformed one is refused', () => {
    const dispatched = (environment: string, given: string) =>
      runPlan(repo, {
        EVENT_NAME: 'workflow_dispatch',
        REF_NAME: 'main',
        INPUT_ENVIRONMENT: environment,
        INPUT_DIGEST: given,
      });
    assert.deepEqual(dispatched('production', digest).outputs, {
      environment: 'production',
      'image-source': 'given',
      tree,
    });
    assert.equal(dispatched('staging', digest).outputs.environment, 'staging');
    assert.notEqual(dispatched('production', 'latest').status, 0);
    assert.notEqual(dispatched('qa', digest).status, 0);
  });

  test('when the plan runs, then nothing decides to skip the stack: no output compares commits', () => {
    assert.doesNotMatch(plan?.run ?? '', /git diff|BEFORE|infra-changed/);
  });
});

describe('deploy pipeline', () => {
  test('when the release starts, then ci, security and pulumi up have passed first', () => {
    const release = job('release');
    assert.deepEqual(needsOf(release).sort(), ['ci', 'infra', 'plan', 'security']);
    for (const stage of ['plan', 'ci', 'security', 'infra']) {
      assert.ok(String(release.if).includes(`needs.${stage}.result == 'success'`), `waits for ${stage}`);
    }
    assert.doesNotMatch(String(release.if), /skipped/, 'a skipped stack update stops the release');
    assert.match(String(release.if), /^!cancelled\(\)/);
  });

  test('when any deploy runs, then pulumi up runs too (a no-op when nothing changed), so a failed run converges next time', () => {
    const infraJob = job('infra');
    assert.equal(infraJob.uses, './.github/workflows/infra.yml');
    assert.equal(infraJob.if, undefined, 'never skipped');
    assert.deepEqual(needsOf(infraJob).sort(), ['ci', 'plan', 'security']);
    assert.equal(infraJob.with?.environment, gha('needs.plan.outputs.environment'));
    const up = infra.jobs.up;
    assert.equal(up?.if, "github.event_name != 'pull_request'");
    assert.equal(up?.steps?.find((step) => step.uses?.startsWith('pulumi/actions@'))?.with?.command, 'up');
    assert.equal(job('ci').uses, './.github/workflows/ci.yml');
    assert.equal(job('security').uses, './.github/workflows/security.yml');
  });

  test('when the image is built, then it is tagged with the commit SHA, scanned before the push, and attested after', () => {
    const steps = deploySteps;
    const access = stepIndex(steps, (step) => step.id === 'access', 'cluster access');
    const build = stepIndex(steps, (step) => step.run?.includes('docker build') === true, 'docker build');
    const sbom = stepIndex(steps, (step) => step.uses?.startsWith('anchore/sbom-action@') === true, 'SBOM');
    const scan = stepIndex(steps, (step) => step.uses?.startsWith('anchore/scan-action@') === true, 'scan');
    const push = stepIndex(steps, (step) => step.run?.includes('docker push') === true, 'docker push');
    const attestations = steps.filter((step) => step.uses?.startsWith('actions/attest@'));
    assert.ok(access < build && build < scan && scan < push, 'role and repository, build, scan, push');
    assert.ok(push < steps.indexOf(upgrade as Step), 'the image is pushed before the upgrade');
    assert.ok(sbom < push);
    assert.match(steps[build]?.run ?? '', /image="\$IMAGE_REPOSITORY:\$GITHUB_SHA"/);
    assert.equal(steps[build]?.env?.IMAGE_REPOSITORY, gha('steps.access.outputs.image-repository'));
    assert.deepEqual(steps[scan]?.with, {
      image: gha('steps.build.outputs.image'),
      'fail-build': true,
      'severity-cutoff': 'high',
      'only-fixed': true,
      'output-format': 'table',
    });
    assert.equal(steps[sbom]?.with?.format, 'cyclonedx-json');
    const sbomAttestation = attestations.find(
      (step) => step.with?.['sbom-path'] === steps[sbom]?.with?.['output-file'],
    );
    assert.ok(sbomAttestation, 'the SBOM is attested');
    for (const attestation of attestations) {
      assert.ok(steps.indexOf(attestation) > push);
      assert.equal(attestation.with?.['push-to-registry'], true, 'attached to the image in the registry');
      assert.equal(attestation.with?.['subject-digest'], gha('steps.image.outputs.digest'));
    }
  });

  test('when the release runs, then it runs in the planned GitHub environment', () => {
    assert.deepEqual(job('release').environment, {
      name: gha('needs.plan.outputs.environment'),
      url: gha('steps.access.outputs.api-url'),
    });
  });

  test('when two releases target one environment, then they queue and a running one is never cancelled', () => {
    const concurrency = job('release').concurrency as { group: string; 'cancel-in-progress': boolean };
    assert.equal(concurrency.group, `release-${gha('needs.plan.outputs.environment')}`);
    assert.equal(concurrency['cancel-in-progress'], false);
    const up = infra.jobs.up?.concurrency as { group: string; 'cancel-in-progress': boolean };
    assert.equal(up.group, `release-${gha('inputs.environment')}`, 'pulumi up shares the group');
    assert.equal(up['cancel-in-progress'], false);
    assert.equal((deploy as { concurrency?: unknown }).concurrency, undefined, 'no workflow-wide group');
  });

  test('when the release is rolled out, then helm upgrade runs after the role is assumed, then helm test, then the smoke test', () => {
    const access = stepIndex(
      deploySteps,
      (step) => step.uses?.startsWith('aws-actions/configure-aws-credentials@') === true,
      'assume role',
    );
    const values = stepIndex(
      deploySteps,
      (step) => step.run?.includes('outputs-to-values.ts') === true,
      'values',
    );
    const upgradeAt = stepIndex(deploySteps, (step) => step.id === 'upgrade', 'helm upgrade');
    const helmTest = stepIndex(
      deploySteps,
      (step) => step.run?.startsWith('helm test ') === true,
      'helm test',
    );
    const smoke = stepIndex(deploySteps, (step) => step.run === 'node test/delivery/smoke.ts', 'smoke test');
    const rollbackAt = stepIndex(deploySteps, (step) => step === rollback, 'rollback');
    assert.ok(access < values && values < upgradeAt, 'credentials and values before the upgrade');
    assert.ok(upgradeAt < helmTest && helmTest < smoke && smoke < rollbackAt);
    assert.deepEqual(helmCommand(deploySteps[helmTest]?.run, 'test').slice(2), [
      '$RELEASE',
      '--namespace',
      '$NAMESPACE',
      '--logs',
      '--timeout',
      '5m',
    ]);
    for (const name of [
      'INGESTA_API_URL',
      'INGESTA_TOKEN_URL',
      'INGESTA_CLIENT_ID',
      'INGESTA_CLIENT_SECRET',
    ]) {
      assert.ok(deploySteps[smoke]?.env?.[name], `the smoke test gets ${name}`);
    }
  });

  test('when helm upgrade runs, then it is deploy/release.ts with the environment’s values, pinned to the image digest', () => {
    const [words] = commands(upgrade?.run ?? '');
    assert.deepEqual(words?.slice(0, 3), ['node', 'deploy/release.ts', 'upgrade']);
    const option = (name: string) => words?.[words.indexOf(name) + 1];
    assert.equal(option('--environment'), '$ENVIRONMENT');
    assert.equal(option('--generated-values'), 'values.generated.yaml');
    assert.equal(option('--image-repository'), '$IMAGE_REPOSITORY');
    assert.equal(option('--image-digest'), '$IMAGE_DIGEST');
    assert.equal(option('--timeout'), '$HELM_TIMEOUT');
    assert.match(String(deploy.env?.HELM_TIMEOUT), /^\d+m$/);
    assert.equal(upgrade?.env?.ENVIRONMENT, gha('needs.plan.outputs.environment'));
    assert.equal(upgrade?.env?.IMAGE_DIGEST, gha('steps.image.outputs.digest'));
    assert.equal(upgrade?.env?.IMAGE_REPOSITORY, gha('steps.access.outputs.image-repository'));
  });

  test('when deploy/release.ts builds the upgrade, then it installs or upgrades atomically with a wait, stack values first and the environment’s over them', () => {
    const args = upgradeArgs({
      environment: 'production',
      generatedValues: 'values.generated.yaml',
      imageRepository: '123456789012.dkr.ecr.us-east-1.amazonaws.com/ingesta-prod',
      imageTag: 'abc',
      imageDigest: `sha256:${'ab'.repeat(32)}`,
      timeout: '10m',
    });
    const used = flags(args);
    for (const flag of [
      '--install',
      '--rollback-on-failure',
      '--wait',
      '--timeout',
      '--namespace',
      '--values',
    ]) {
      assert.ok(used.includes(flag), `helm upgrade lacks ${flag}`);
    }
    assert.ok(!used.includes('--atomic'), 'Helm 4 renamed --atomic to --rollback-on-failure');
    const valuesFiles = args.filter((_, index) => args[index - 1] === '--values');
    assert.deepEqual(valuesFiles, ['values.generated.yaml', 'deploy/values/production.yaml']);
    assert.ok(args.includes(`image.digest=sha256:${'ab'.repeat(32)}`));
    assert.throws(
      () =>
        upgradeArgs({
          environment: 'production',
          generatedValues: 'v.yaml',
          imageRepository: 'r',
          imageTag: 't',
          imageDigest: '',
        }),
      /releases pull by digest/,
    );
  });

  test('when the release fails its checks after a successful upgrade, then the workflow rolls it back to the serving revision', () => {
    assert.ok(rollback);
    assert.equal(rollback.if, "failure() && steps.upgrade.outcome == 'success'");
    assert.equal(rollback.env?.PREVIOUS_REVISION, gha('steps.previous.outputs.revision'));
    const words = helmCommand(rollback.run, 'rollback');
    assert.deepEqual(words.slice(2, 4), ['$RELEASE', '$PREVIOUS_REVISION']);
    assert.ok(flags(words).includes('--wait'));
    const previous = deploySteps.findIndex((step) => step.id === 'previous');
    assert.ok(
      previous >= 0 && previous < deploySteps.indexOf(upgrade as Step),
      'the serving revision is read first',
    );
  });

  test('when the cluster-access action installs Helm, then it pins a Helm 4 release', () => {
    const setupHelm = clusterAccess.runs.steps.find((step) => step.uses?.startsWith('azure/setup-helm@'));
    assert.match(String(setupHelm?.with?.version), /^v4\.\d+\.\d+$/);
  });
});

describe('stack outputs step of the cluster-access action', () => {
  const stack = clusterAccess.runs.steps.find((step) => step.id === 'stack');
  const hasJq = spawnSync('jq', ['--version']).status === 0;
  const scratch = mkdtempSync(join(tmpdir(), 'ingesta-stack-'));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  /** Runs the step against a fake `pulumi` printing `outputs` and a stub values script. */
  function runStack(outputs: Record<string, unknown>, env: Record<string, string> = {}) {
    const workspace = mkdtempSync(join(scratch, 'ws-'));
    const bin = join(workspace, 'bin');
    mkdirSync(join(workspace, 'infra', 'scripts'), { recursive: true });
    mkdirSync(bin);
    mkdirSync(join(workspace, 'tmp'));
    // The step parses the values with the root `yaml` dependency, as after `npm ci`.
    symlinkSync(join(repoRoot, 'node_modules'), join(workspace, 'node_modules'));
    writeFileSync(
      join(workspace, 'infra', 'scripts', 'outputs-to-values.ts'),
      "const input = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));\n" +
        'process.stdout.write("image:\\n  repository: " + input.repositoryUrl + "\\n");\n',
    );
    writeFileSync(
      join(bin, 'pulumi'),
      `#!/bin/sh\necho "$*" >> "${workspace}/pulumi-calls"\n[ "$1" = stack ] && echo '${JSON.stringify(outputs)}'\nexit 0\n`,
      { mode: 0o755 },
    );
    const githubOutput = join(workspace, 'github-output');
    writeFileSync(githubOutput, '');
    const result = spawnSync('bash', ['-eo', 'pipefail', '-c', stack?.run ?? 'exit 99'], {
      cwd: join(workspace, 'infra'),
      encoding: 'utf8',
      env: {
        PATH: `${bin}:${process.env.PATH ?? ''}`,
        RUNNER_TEMP: join(workspace, 'tmp'),
        GITHUB_WORKSPACE: workspace,
        GITHUB_OUTPUT: githubOutput,
        PULUMI_STACK: 'dev',
        PULUMI_BACKEND_URL: '',
        ...env,
      },
    });
    const read = (name: string) => {
      try {
        return readFileSync(join(workspace, name), 'utf8');
      } catch {
        return '';
      }
    };
    return {
      status: result.status,
      values: read('values.generated.yaml'),
      outputs: read('github-output'),
      pulumiCalls: read('pulumi-calls'),
    };
  }

  const repositoryUrl = '111122223333.dkr.ecr.eu-west-1.amazonaws.com/ingesta-dev';
  const complete = {
    repositoryUrl,
    clusterName: 'ingesta-dev',
    apiUrl: 'https://api.example.com',
    tokenUrl: 'https://auth.example.com/oauth2/token',
  };

  test('when the stack has every output, then the values file comes from outputs-to-values and the job learns the cluster and URLs', {
    skip: hasJq ? false : 'jq unavailable',
  }, () => {
    const run = runStack(complete);

    assert.equal(run.status, 0);
    assert.equal(run.values, `image:\n  repository: ${repositoryUrl}\n`);
    assert.deepEqual(run.outputs.trim().split('\n'), [
      'cluster-name=ingesta-dev',
      'api-url=https://api.example.com',
      'token-url=https://auth.example.com/oauth2/token',
      `image-repository=${repositoryUrl}`,
    ]);
    assert.equal(
      run.pulumiCalls,
      'stack output --stack dev --json\n',
      'Pulumi Cloud needs no explicit login',
    );
  });

  test('when the stack lacks an output the deploy needs, then the step fails', {
    skip: hasJq ? false : 'jq unavailable',
  }, () => {
    const { tokenUrl: _omitted, ...withoutTokenUrl } = complete;

    assert.notEqual(runStack(withoutTokenUrl).status, 0);
  });

  test('when image.repository is not an ECR repository, then the step fails before anything is built', {
    skip: hasJq ? false : 'jq unavailable',
  }, () => {
    assert.notEqual(runStack({ ...complete, repositoryUrl: 'docker.io/someone/ingesta' }).status, 0);
    assert.notEqual(runStack({ ...complete, repositoryUrl: undefined }).status, 0);
  });

  test('when a self-managed backend is configured, then the CLI logs in to it first', {
    skip: hasJq ? false : 'jq unavailable',
  }, () => {
    const run = runStack(complete, { PULUMI_BACKEND_URL: 's3://ingesta-state' });

    assert.equal(run.status, 0);
    assert.equal(run.pulumiCalls.split('\n')[0], 'login s3://ingesta-state');
  });
});

describe('helm flags against the pinned Helm 4 binary', () => {
  const helmOutput = (args: string[]) => execFileSync(toolPath('helm'), args, { encoding: 'utf8' });

  test('when the workflow calls helm, then every flag it passes exists in Helm 4', () => {
    const version = helmOutput(['version', '--template', '{{.Version}}']);
    const setupHelm = clusterAccess.runs.steps.find((step) => step.uses?.startsWith('azure/setup-helm@'));
    assert.equal(
      version.split('.')[0],
      String(setupHelm?.with?.version).split('.')[0],
      'same Helm major as CI',
    );
    const releaseCall = [
      'helm',
      ...upgradeArgs({
        environment: 'staging',
        generatedValues: 'values.generated.yaml',
        imageRepository: 'r',
        imageTag: 't',
        imageDigest: `sha256:${'ab'.repeat(32)}`,
      }),
    ];
    const calls = [...deploySteps.flatMap((step) => helmCalls(step.run ?? '')), releaseCall];
    const subcommands = new Set(calls.map((words) => words[1] ?? ''));
    for (const subcommand of ['upgrade', 'test', 'rollback', 'history'])
      assert.ok(subcommands.has(subcommand), subcommand);
    const helpBySubcommand = new Map([...subcommands].map((name) => [name, helmOutput([name, '--help'])]));
    for (const words of calls) {
      const help = helpBySubcommand.get(words[1] ?? '') ?? '';
      for (const flag of flags(words).filter((flag) => flag.startsWith('--'))) {
        assert.ok(help.includes(`${flag} `), `helm ${words[1]} has no ${flag}`);
      }
    }
  });
});

describe('infra workflow', () => {
  test('when a pull request touches infra/, then every stack is previewed and the diff is posted as a comment', () => {
    const trigger = infra.on.pull_request as { paths: string[] };
    assert.ok(trigger.paths.includes('infra/**'));
    const preview = infra.jobs.preview;
    const pulumi = preview?.steps?.find((step) => step.uses?.startsWith('pulumi/actions@'));
    assert.equal(pulumi?.with?.command, 'preview');
    assert.equal(pulumi?.with?.['comment-on-pr'], true);
    assert.equal(pulumi?.with?.['work-dir'], 'infra');
    assert.match(
      String((preview as { strategy?: { matrix?: { stack?: unknown } } }).strategy?.matrix?.stack),
      /dev.*prod/,
    );
  });

  test('when a merge is deployed, then pulumi up applies the stack of the target environment', () => {
    assert.ok('workflow_call' in infra.on);
    const up = infra.jobs.up;
    assert.equal(up?.environment, gha('inputs.environment'));
    const pulumi = up?.steps?.find((step) => step.uses?.startsWith('pulumi/actions@'));
    assert.equal(pulumi?.with?.command, 'up');
    assert.equal(pulumi?.with?.['stack-name'], gha('vars.PULUMI_STACK'));
  });
});

describe('revision bookkeeping and rollback with a fake helm', () => {
  const previous = deploySteps.find((step) => step.id === 'previous');
  const hasJq = spawnSync('jq', ['--version']).status === 0;
  const scratch = mkdtempSync(join(tmpdir(), 'ingesta-rollback-'));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  /** Runs a step's script with a `helm` that logs its arguments and prints `historyJson`. */
  function runWithHelm(script: string | undefined, env: Record<string, string>, historyJson?: string) {
    const dir = mkdtempSync(join(scratch, 'run-'));
    const history =
      historyJson === undefined ? 'echo "Error: release: not found" >&2; exit 1' : `echo '${historyJson}'`;
    writeFileSync(
      join(dir, 'helm'),
      `#!/bin/sh\necho "$*" >> "${dir}/calls"\nif [ "$1" = history ]; then ${history}; fi\nexit 0\n`,
      { mode: 0o755 },
    );
    writeFileSync(join(dir, 'output'), '');
    const result = spawnSync('bash', ['-eo', 'pipefail', '-c', script ?? 'exit 99'], {
      encoding: 'utf8',
      env: {
        PATH: `${dir}:${process.env.PATH ?? ''}`,
        GITHUB_OUTPUT: join(dir, 'output'),
        RELEASE: 'ingesta',
        NAMESPACE: 'ingesta',
        HELM_TIMEOUT: '10m',
        ...env,
      },
    });
    const read = (name: string) => readFileSync(join(dir, name), 'utf8').trim();
    return { status: result.status, output: read('output'), calls: read('calls').split('\n') };
  }

  test('when the release has history, then the serving revision is the last deployed one', {
    skip: hasJq ? false : 'jq unavailable',
  }, () => {
    const history = JSON.stringify([
      { revision: 4, status: 'superseded' },
      { revision: 5, status: 'deployed' },
      { revision: 6, status: 'failed' },
    ]);

    assert.equal(runWithHelm(previous?.run, {}, history).output, 'revision=5');
  });

  test('when the release does not exist yet, then no serving revision is recorded and the step passes', {
    skip: hasJq ? false : 'jq unavailable',
  }, () => {
    const run = runWithHelm(previous?.run, {});

    assert.equal(run.status, 0);
    assert.equal(run.output, 'revision=');
  });

  test('when a release with a serving revision fails its checks, then helm rolls back to exactly that revision', () => {
    const run = runWithHelm(rollback?.run, { PREVIOUS_REVISION: '5' });

    assert.equal(run.status, 0);
    assert.equal(run.calls[0], 'rollback ingesta 5 --namespace ingesta --wait=watcher --timeout 10m');
  });

  test('when a first install fails its checks, then it is uninstalled since there is nothing to return to', () => {
    const run = runWithHelm(rollback?.run, { PREVIOUS_REVISION: '' });

    assert.equal(run.status, 0);
    assert.equal(run.calls[0], 'uninstall ingesta --namespace ingesta --wait=watcher --timeout 10m');
  });
});

describe('build once, promote by digest', () => {
  const promote = deploySteps.find((step) => step.id === 'promote');
  const scratch = mkdtempSync(join(tmpdir(), 'ingesta-promote-'));
  after(() => rmSync(scratch, { recursive: true, force: true }));
  const staging = '111122223333.dkr.ecr.us-east-1.amazonaws.com/ingesta-dev';
  const production = '444455556666.dkr.ecr.us-east-1.amazonaws.com/ingesta-prod';
  const tree = 'f'.repeat(40);
  const sha = 'c'.repeat(40);
  const digest = `sha256:${'ab'.repeat(32)}`;

  /**
   * Runs the promote step with a fake `aws ecr describe-images` answering from `images` (lines of
   * "<repository name> <image id> <digest>") and a fake `skopeo` that copies with `copiedDigest`.
   */
  function runPromote(env: Record<string, string>, images: string[], copiedDigest = digest) {
    const dir = mkdtempSync(join(scratch, 'run-'));
    writeFileSync(join(dir, 'images'), images.map((line) => `${line}\n`).join(''));
    writeFileSync(
      join(dir, 'aws'),
      `#!/bin/bash
while [ $# -gt 0 ]; do
  case "$1" in --repository-name) repo="$2"; shift ;; --image-ids) id="$2"; shift ;; esac; shift
done
found=$(awk -v r="$repo" -v i="$id" '$1 == r && $2 == i { print $3 }' "${dir}/images")
[ -n "$found" ] && echo "$found" && exit 0
echo "ImageNotFoundException" >&2; exit 254
`,
      { mode: 0o755 },
    );
    writeFileSync(
      join(dir, 'skopeo'),
      `#!/bin/bash
echo "$*" >> "${dir}/skopeo-calls"
target="\${@: -1}"; target="\${target#docker://}"; name="\${target#*/}"
echo "\${name%%:*} imageTag=\${name#*:} ${copiedDigest}" >> "${dir}/images"
`,
      { mode: 0o755 },
    );
    writeFileSync(join(dir, 'output'), '');
    const result = spawnSync('bash', ['-eo', 'pipefail', '-c', promote?.run ?? 'exit 99'], {
      encoding: 'utf8',
      env: {
        PATH: `${dir}:${process.env.PATH ?? ''}`,
        GITHUB_OUTPUT: join(dir, 'output'),
        GITHUB_SHA: sha,
        GITHUB_RUN_ID: '42',
        IMAGE_REPOSITORY: production,
        SOURCE_REPOSITORY: staging,
        TREE: tree,
        GIVEN_DIGEST: '',
        ...env,
      },
    });
    const read = (name: string) => {
      try {
        return readFileSync(join(dir, name), 'utf8').trim();
      } catch {
        return '';
      }
    };
    return { status: result.status, output: read('output'), copies: read('skopeo-calls') };
  }

  test('when an image is built, then only for staging: production and dispatches never run docker build', () => {
    const builders = deploySteps.filter((step) => step.run?.includes('docker build'));
    assert.equal(builders.length, 1);
    assert.match(String(builders[0]?.if), /needs\.plan\.outputs\.image-source == 'build'/);
    const existing = deploySteps.find((step) => step.id === 'existing');
    assert.match(String(existing?.if), /needs\.plan\.outputs\.image-source == 'build'/);
    for (const step of deploySteps.filter((candidate) =>
      /docker push|anchore\/|actions\/attest@/.test(`${candidate.run ?? ''}${candidate.uses ?? ''}`),
    )) {
      assert.match(String(step.if), /steps\.(build|push)\.outcome == 'success'/, step.name ?? step.uses);
    }
    assert.equal(promote?.if, "needs.plan.outputs.image-source != 'build'");
    assert.match(deploySteps.find((step) => step.id === 'push')?.run ?? '', /tree-\$TREE/);
  });

  test('when main is deployed, then the staging image of the same source tree is copied by digest, digest verified', () => {
    const run = runPromote({ IMAGE_SOURCE: 'promote' }, [
      `ingesta-dev imageTag=tree-${tree} ${digest}`,
      `ingesta-dev imageDigest=${digest} ${digest}`,
    ]);
    assert.equal(run.status, 0);
    assert.equal(
      run.copies,
      `copy --all --preserve-digests docker://${staging}@${digest} docker://${production}:${sha}`,
    );
    assert.deepEqual(run.output.split('\n'), [`digest=${digest}`, `tag=${sha}`]);
  });

  test('when staging has no image of this source tree, then production fails instead of building one', () => {
    const run = runPromote({ IMAGE_SOURCE: 'promote' }, []);
    assert.notEqual(run.status, 0);
    assert.equal(run.copies, '');
  });

  test('when the copy would change the digest, then the release stops', () => {
    const run = runPromote(
      { IMAGE_SOURCE: 'promote' },
      [`ingesta-dev imageTag=tree-${tree} ${digest}`, `ingesta-dev imageDigest=${digest} ${digest}`],
      `sha256:${'cd'.repeat(32)}`,
    );
    assert.notEqual(run.status, 0);
  });

  test('when a digest production ran before is dispatched, then it is rolled back to without a copy', () => {
    const run = runPromote({ IMAGE_SOURCE: 'given', GIVEN_DIGEST: digest }, [
      `ingesta-prod imageDigest=${digest} ${digest}`,
    ]);
    assert.equal(run.status, 0);
    assert.equal(run.copies, '');
    assert.equal(run.output.split('\n')[0], `digest=${digest}`);
  });

  test('when the upgrade pulls the image, then by the digest resolved here', () => {
    const image = deploySteps.find((step) => step.id === 'image');
    assert.equal(image?.env?.PROMOTED, gha('steps.promote.outputs.digest'));
    assert.equal(upgrade?.env?.IMAGE_DIGEST, gha('steps.image.outputs.digest'));
  });
});
