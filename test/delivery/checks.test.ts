import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gha, type Job, type Step, workflow } from './support/workflows.ts';

const ci = workflow('ci.yml');
const security = workflow('security.yml');
const deploy = workflow('deploy.yml');

function runs(job: Job | undefined): string[] {
  return (job?.steps ?? []).flatMap((step) => (step.run ?? '').split('\n').map((line) => line.trim()));
}

function jobRunning(command: string): Job {
  const found = Object.values(ci.jobs).find((job) => runs(job).includes(command));
  assert.ok(found, `no ci job runs ${command}`);
  return found;
}

function usesAction(job: Job | undefined, action: string): Step | undefined {
  return job?.steps?.find((step) => step.uses?.startsWith(`${action}@`));
}

describe('ci workflow', () => {
  test('when a pull request or a push arrives, then ci runs, and the deploy workflow can call it', () => {
    assert.ok('pull_request' in ci.on && 'push' in ci.on && 'workflow_call' in ci.on);
    const push = ci.on.push as { 'branches-ignore': string[] };
    assert.deepEqual(push['branches-ignore'], ['main', 'develop'], 'main and develop run it inside deploy');
  });

  test('when ci runs, then it lints, type-checks and builds', () => {
    for (const command of ['npm run lint', 'npm run typecheck', 'npm run build']) jobRunning(command);
  });

  test('when the tests run, then PostgreSQL runs as a service container and DATABASE_URL points at it', () => {
    const job = jobRunning('npm test');
    assert.equal(job.env?.DATABASE_URL, 'postgres://postgres:postgres@localhost:5432/postgres');
    const postgres = job.services?.postgres;
    assert.match(postgres?.image ?? '', /^postgres:\d+@sha256:/);
    assert.equal(postgres?.env?.POSTGRES_PASSWORD, 'postgres');
    assert.deepEqual((postgres as { ports?: string[] }).ports, ['5432:5432']);
  });

  test('when ci runs, then chart, infra, rule and delivery checks run too', () => {
    jobRunning('npm run test:chart');
    const infra = jobRunning('npm ci --prefix infra');
    assert.deepEqual(runs(infra).slice(-3), [
      'npm ci --prefix infra',
      'npm run --prefix infra typecheck',
      'npm test --prefix infra',
    ]);
    const rules = jobRunning('npm run test:rules');
    assert.ok(
      runs(rules).includes('if ! command -v promtool >/dev/null; then'),
      'promtool is installed only if missing',
    );
    jobRunning('npm run test:delivery');
  });

  test('when ci runs, then the fault suite, the live Prometheus checks, the docs and the benchmark smoke run run too', () => {
    for (const command of ['npm run test:faults', 'npm run bench -- --quick']) {
      assert.equal(
        jobRunning(command).env?.DATABASE_URL,
        'postgres://postgres:postgres@localhost:5432/postgres',
        `${command} has PostgreSQL`,
      );
    }
    assert.ok(
      runs(jobRunning('npm run test:prometheus')).includes('if ! command -v prometheus >/dev/null; then'),
    );
    assert.ok(jobRunning('npm run test:docs').env?.CHROMIUM_PATH, 'the docs job names a browser');
  });
});

describe('security workflow', () => {
  test('when code changes, then CodeQL analyses the TypeScript and the workflows', () => {
    const codeql = security.jobs.codeql as Job & { strategy: { matrix: { language: string[] } } };
    assert.deepEqual(codeql.strategy.matrix.language, ['javascript-typescript', 'actions']);
    assert.ok(usesAction(codeql, 'github/codeql-action/init'));
    assert.ok(usesAction(codeql, 'github/codeql-action/analyze'));
    assert.equal((codeql.permissions as Record<string, string>)['security-events'], 'write');
  });

  test('when dependencies change, then production dependencies are audited and pull requests reviewed', () => {
    const audit = runs(security.jobs.audit);
    assert.ok(audit.includes('npm audit --omit=dev --audit-level=high'));
    assert.ok(audit.includes('npm audit --prefix infra --omit=dev --audit-level=high'));
    const review = security.jobs['dependency-review'];
    assert.equal(review?.if, "github.event_name == 'pull_request'");
    assert.equal(usesAction(review, 'actions/dependency-review-action')?.with?.['fail-on-severity'], 'high');
  });

  test('when history and workflows change, then secrets and workflow weaknesses are scanned', () => {
    const secrets = security.jobs.secrets;
    assert.ok(usesAction(secrets, 'gitleaks/gitleaks-action'));
    assert.equal(secrets?.steps?.[0]?.with?.['fetch-depth'], 0, 'the whole history is scanned');
    assert.equal(
      usesAction(security.jobs.workflows, 'zizmorcore/zizmor-action')?.with?.['advanced-security'],
      false,
    );
  });

  test('when a pull request changes the image, then it is built, described by a CycloneDX SBOM and must pass Grype', () => {
    const image = security.jobs.image;
    assert.equal(image?.if, gha('!inputs.skip-image-scan'), 'runs when not called with skip-image-scan');
    assert.equal(usesAction(image, 'anchore/sbom-action')?.with?.format, 'cyclonedx-json');
    const scan = usesAction(image, 'anchore/scan-action');
    assert.equal(scan?.with?.['fail-build'], true);
    assert.equal(scan?.with?.['severity-cutoff'], 'high');
  });

  test('when deploy calls the security workflow, then it skips that scan because it scans the image it pushes', () => {
    assert.deepEqual(deploy.jobs.security?.with, { 'skip-image-scan': true });
  });
});
