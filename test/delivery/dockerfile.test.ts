import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { rdsCaBundlePath } from '../../infra/src/database-tls.ts';
import {
  contextIncludes,
  execForm,
  type Instruction,
  keyValues,
  parseDockerfile,
  type Stage,
  shellCommands,
  stagesOf,
} from './support/dockerfile.ts';
import { repoRoot } from './support/workflows.ts';

const read = (path: string) => readFileSync(join(repoRoot, path), 'utf8');
const instructions = parseDockerfile(read('Dockerfile'));
const stages = stagesOf(instructions);
const dockerignore = read('.dockerignore');
const packageJson = JSON.parse(read('package.json')) as { type?: string; engines?: { node?: string } };
const buildInputs = (JSON.parse(read('tsconfig.build.json')) as { include: string[] }).include;

const runtime = stages.at(-1) as Stage;
const pinnedBase = /^node:((\d+)\.\d+\.\d+)-bookworm-slim@sha256:[0-9a-f]{64}$/;

function stage(name: string): Stage {
  const found = stages.find((candidate) => candidate.name === name);
  assert.ok(found, `no stage ${name}`);
  return found;
}

function all(stageOrStages: Stage | Stage[], keyword: string): Instruction[] {
  const list = Array.isArray(stageOrStages) ? stageOrStages : [stageOrStages];
  return list.flatMap((candidate) =>
    candidate.instructions.filter((instruction) => instruction.keyword === keyword),
  );
}

/** Commands run by the RUN instructions of a stage, as words. */
function runCommands(target: Stage): string[][] {
  return all(target, 'RUN').flatMap((instruction) => shellCommands(instruction.rest));
}

/** The stage a stage starts from, followed back to the image. */
function ancestry(target: Stage): Stage[] {
  const parent = stages.find((candidate) => candidate.name === target.base);
  return parent ? [...ancestry(parent), target] : [target];
}

describe('Node release', () => {
  // The image is what runs in production; CI (`.nvmrc`) and local runs (`.ci/node.sh`) must test
  // exactly that release, or a fix or regression of a patch release is shipped untested.
  const imageRelease = () => {
    const bases = stages.map((stage) => pinnedBase.exec(stage.base)?.[1]).filter(Boolean);
    assert.equal(bases.length, 1);
    return bases[0];
  };
  const scriptRelease = () => /^NODE_WANTED=(\S+)$/m.exec(read('.ci/node.sh'))?.[1];

  test('when CI and local runs set up Node, then both take the same exact release', () => {
    assert.match(read('.nvmrc').trim(), /^\d+\.\d+\.\d+$/, '.nvmrc names an exact release');
    assert.equal(read('.nvmrc').trim(), scriptRelease());
  });

  test('when the image is built, then it runs the release CI tests', () => {
    assert.equal(imageRelease(), read('.nvmrc').trim());
  });
});

describe('Dockerfile stages', () => {
  test('when the Dockerfile is read, then it builds in stages ending in a runtime stage', () => {
    assert.ok(stages.length >= 3, 'base, build and runtime stages at least');
    assert.equal(runtime.name, 'runtime');
  });

  test('when a stage starts, then it starts from the digest-pinned Node LTS image or an earlier stage', () => {
    const images = stages.filter((candidate) => !stages.some((other) => other.name === candidate.base));
    assert.equal(images.length, 1, 'one pinned base image, updated in one place');
    const [image] = images;
    const match = pinnedBase.exec(image?.base ?? '');
    assert.ok(match, `${image?.base} is not node:<x.y.z>-bookworm-slim@sha256:<digest>`);
    assert.equal(match[2], read('.nvmrc').trim().split('.')[0], 'the image runs the Node major of .nvmrc');
    assert.match(packageJson.engines?.node ?? '', new RegExp(`>=${match[2]}\\b`));
    stages.forEach((candidate, index) => {
      if (candidate === image) return;
      const earlier = stages.slice(0, index).map((other) => other.name);
      assert.ok(earlier.includes(candidate.base), `stage ${candidate.name} starts from ${candidate.base}`);
    });
  });

  test('when the build stage runs, then it installs every dependency without install scripts and compiles', () => {
    const build = stage('build');
    const commands = runCommands(build);
    const install = commands.findIndex((words) => words[0] === 'npm' && words[1] === 'ci');
    const compile = commands.findIndex((words) => words.join(' ') === 'npm run build');
    assert.ok(install >= 0 && compile > install, 'npm ci, then npm run build');
    assert.ok(!commands[install]?.includes('--omit=dev'), 'the compiler is a dev dependency');
    assert.ok(commands[install]?.includes('--ignore-scripts'));
  });

  test('when the build stage copies sources, then it copies every folder tsc compiles and the build scripts', () => {
    const copied = all(stage('build'), 'COPY')
      .filter((instruction) => !instruction.flags.from)
      .flatMap((instruction) => instruction.rest.split(/\s+/).slice(0, -1));
    for (const folder of [
      ...buildInputs,
      'scripts',
      'tsconfig.json',
      'tsconfig.build.json',
      'package-lock.json',
    ]) {
      assert.ok(copied.includes(folder), `build stage does not copy ${folder}`);
    }
  });

  test('when production dependencies are installed, then dev dependencies and install scripts are left out', () => {
    const copies = all(runtime, 'COPY').filter((instruction) =>
      instruction.rest.startsWith('/app/node_modules'),
    );
    assert.equal(copies.length, 1, 'node_modules comes from one stage');
    const source = stage(copies[0]?.flags.from ?? '');
    const installs = runCommands(source).filter((words) => words[0] === 'npm' && words[1] === 'ci');
    assert.equal(installs.length, 1);
    assert.ok(installs[0]?.includes('--omit=dev'));
    assert.ok(installs[0]?.includes('--ignore-scripts'), 'no dependency of the app needs an install script');
    for (const other of stages) {
      for (const words of runCommands(other)) {
        assert.ok(
          !(words[0] === 'npm' && words[1] === 'install'),
          `stage ${other.name} runs npm install, not npm ci`,
        );
      }
    }
  });

  test('when the runtime stage is assembled, then it holds compiled code, production modules and package.json only', () => {
    const copies = all(runtime, 'COPY').map((instruction) => ({
      from: instruction.flags.from,
      rest: instruction.rest,
    }));
    assert.deepEqual(copies.map((copy) => `${copy.from ?? 'context'}: ${copy.rest}`).sort(), [
      'build: /app/dist ./dist',
      'context: package.json ./',
      'deps: /app/node_modules ./node_modules',
    ]);
    assert.equal(packageJson.type, 'module', 'the copied package.json makes dist/*.js ES modules');
    assert.equal(keyValues(all(runtime, 'ENV')[0] as Instruction).NODE_ENV, 'production');
    assert.ok(
      ancestry(runtime).some((candidate) => all(candidate, 'WORKDIR').some((dir) => dir.rest === '/app')),
    );
  });
});

describe('Dockerfile: database TLS', () => {
  test('when the pods verify PostgreSQL, then the image ships the RDS CA bundle from AWS, pinned by checksum, where sslrootcert points', () => {
    const adds = all(runtime, 'ADD');
    assert.equal(adds.length, 1, 'one ADD: the CA bundle');
    const [add] = adds as [Instruction];
    const [url, target] = add.rest.split(/\s+/);
    assert.equal(url, 'https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem');
    assert.equal(target, rdsCaBundlePath, 'the path infra puts in DATABASE_URL (sslrootcert)');
    assert.equal(add.flags.chmod, '0444', 'read-only for the non-root user');
    assert.equal(add.flags.chown, undefined, 'owned by root');
    const arg = all(runtime, 'ARG').find((instruction) =>
      instruction.rest.startsWith('RDS_CA_BUNDLE_SHA256='),
    );
    assert.match(arg?.rest ?? '', /^RDS_CA_BUNDLE_SHA256=[0-9a-f]{64}$/, 'a pinned sha256');
    assert.match(
      add.flags.checksum ?? '',
      /^sha256:\$\{RDS_CA_BUNDLE_SHA256\}$/,
      'the build fails when the bundle changes',
    );
    const user = runtime.instructions.findIndex((instruction) => instruction.keyword === 'USER');
    assert.ok(runtime.instructions.indexOf(add) < user, 'added before the image drops root');
  });

  test('when the bundle is copied into the image, then nothing from the build context can replace it', () => {
    assert.ok(!contextIncludes(dockerignore, 'certs/rds-global-bundle.pem'));
  });
});

describe('Dockerfile runtime', () => {
  test('when the container starts, then it runs as the non-root node user (uid 1000)', () => {
    const users = all(runtime, 'USER');
    assert.equal(users.length, 1);
    const [user, group] = (users[0]?.rest ?? '').split(':');
    assert.equal(user, '1000', 'numeric, so Kubernetes can check runAsNonRoot');
    assert.notEqual(group, '0');
    const last = runtime.instructions.indexOf(users[0] as Instruction);
    const after = runtime.instructions.slice(last + 1).map((instruction) => instruction.keyword);
    assert.ok(!after.includes('RUN') && !after.includes('COPY'), 'nothing runs or lands as root after USER');
  });

  test('when no command is given, then node itself is PID 1 and starts the API with telemetry first', () => {
    assert.deepEqual(all(runtime, 'ENTRYPOINT'), [], 'the chart passes the command; no wrapper in between');
    const cmd = all(runtime, 'CMD');
    assert.equal(cmd.length, 1);
    assert.deepEqual(execForm(cmd[0] as Instruction), [
      'node',
      '--import',
      './dist/platform/telemetry/register.js',
      'dist/api/main.js',
    ]);
    assert.equal(all(runtime, 'STOPSIGNAL')[0]?.rest, 'SIGTERM');
  });

  test('when the image is labelled, then it carries the OCI annotations with build-time version, revision and date', () => {
    const labels = Object.assign({}, ...all(runtime, 'LABEL').map(keyValues)) as Record<string, string>;
    const args = Object.assign({}, ...all(runtime, 'ARG').map(keyValues)) as Record<
      string,
      string | undefined
    >;
    for (const [label, arg] of [
      ['org.opencontainers.image.version', 'VERSION'],
      ['org.opencontainers.image.revision', 'REVISION'],
      ['org.opencontainers.image.created', 'CREATED'],
      ['org.opencontainers.image.source', 'SOURCE'],
    ] as const) {
      assert.equal(labels[label], `\${${arg}}`, `${label} comes from the ${arg} build argument`);
      assert.ok(arg in args, `ARG ${arg} is declared in the runtime stage`);
    }
    assert.equal(labels['org.opencontainers.image.title'], 'ingesta');
    assert.equal(labels['org.opencontainers.image.licenses'], 'Apache-2.0');
  });

  test('when the runtime stage is built, then it removes the package managers the processes never use', () => {
    const removed = runCommands(runtime)
      .filter((words) => words[0] === 'rm')
      .flatMap((words) => words.slice(1));
    for (const path of ['/usr/local/bin/npm', '/usr/local/bin/npx', '/usr/local/lib/node_modules']) {
      assert.ok(removed.includes(path), `${path} stays in the image`);
    }
  });
});

describe('.dockerignore', () => {
  test('when the image copies from the build context, then every source it copies is in the context', () => {
    const sources = stages
      .flatMap((candidate) => all(candidate, 'COPY'))
      .filter((instruction) => !instruction.flags.from)
      .flatMap((instruction) => instruction.rest.split(/\s+/).slice(0, -1));
    assert.ok(sources.length > 5);
    for (const source of sources) {
      assert.ok(contextIncludes(dockerignore, source), `${source} is excluded from the context`);
      if (!source.includes('.')) {
        assert.ok(
          contextIncludes(dockerignore, `${source}/nested/file.ts`),
          `files inside ${source} are excluded`,
        );
      }
    }
  });

  test('when local files lie around, then secrets, dependencies, history and tests stay out of the context', () => {
    for (const path of [
      '.env',
      'api/.env.local',
      '.git/config',
      'node_modules/pg/package.json',
      'api/node_modules/x.js',
      'test/unit/config.test.ts',
      'api/server.test.ts',
      'infra/Pulumi.prod.yaml',
      'charts/ingesta/values.yaml',
      'bench/results/run.json',
      '.tmp/pgdata/PG_VERSION',
      'dist/api/main.js',
    ]) {
      assert.equal(contextIncludes(dockerignore, path), false, `${path} would reach the build context`);
    }
  });
});
