/**
 * The contract between the chart and the app: the chart sets only variables the app's config knows,
 * every variable a process requires, values the config accepts; and the commands, environment and
 * probes it renders, run as they are against PostgreSQL and the SNS/SQS emulator, start the processes
 * and answer on the ports and paths the chart names.
 *
 * The rendered commands run from the repository root (the image's WORKDIR) on the TypeScript sources
 * at the same relative paths (`dist/api/main.js` → `api/main.ts`), so no build is needed; the build
 * (`tsconfig.build.json`) maps them back one to one.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { type LocalMessaging, startLocalMessaging } from '../../local/emulator.ts';
import { ConfigError, configVariables, loadConfig, type Role } from '../../platform/config.ts';
import { getManifest, type Manifest, renderManifests, repoRoot, scenarios } from './support/chart.ts';

/** Containers of the chart that run the app, and the config role each one loads. */
const appContainers: { kind: string; nameSuffix: string; role: Role }[] = [
  { kind: 'Deployment', nameSuffix: '-api', role: 'api' },
  { kind: 'Deployment', nameSuffix: '-consumer', role: 'consumer' },
  { kind: 'Job', nameSuffix: '-migrations', role: 'migrate' },
  { kind: 'CronJob', nameSuffix: '-maintenance', role: 'migrate' },
];

/** Variables read by the runtime rather than the app's config: Node itself and the OpenTelemetry SDK. */
const runtimeVariables = new Set([
  'NODE_OPTIONS',
  'OTEL_SDK_DISABLED',
  'OTEL_SERVICE_NAME',
  'OTEL_RESOURCE_ATTRIBUTES',
  'OTEL_TRACES_EXPORTER',
  'OTEL_METRICS_EXPORTER',
  'OTEL_LOGS_EXPORTER',
  'OTEL_PROPAGATORS',
  'OTEL_TRACES_SAMPLER',
  'OTEL_TRACES_SAMPLER_ARG',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  'OTEL_EXPORTER_OTLP_PROTOCOL',
  'OTEL_EXPORTER_OTLP_HEADERS',
  'OTEL_EXPORTER_OTLP_TIMEOUT',
]);

const knownVariables = new Set<string>(Object.keys(configVariables));

// biome-ignore lint/suspicious/noExplicitAny: a rendered Kubernetes container
type Container = any;

function appContainer(manifests: Manifest[], kind: string, nameSuffix: string): Container {
  const { spec } = getManifest(manifests, kind, nameSuffix);
  return (kind === 'CronJob' ? spec.jobTemplate.spec : spec).template.spec.containers[0];
}

/**
 * The environment a container gets, as the kubelet builds it: envFrom ConfigMaps, then env entries.
 * Secret references resolve through `secrets` (`name/key` → value); a missing one is an error.
 */
function containerEnvironment(
  manifests: Manifest[],
  container: Container,
  secrets: Record<string, string> = {},
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    assert.ok(source.configMapRef, 'only ConfigMaps are used with envFrom');
    Object.assign(env, getManifest(manifests, 'ConfigMap', source.configMapRef.name).data);
  }
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) {
      env[variable.name] = variable.value;
    } else if (variable.valueFrom?.secretKeyRef) {
      const { name, key } = variable.valueFrom.secretKeyRef;
      env[variable.name] = secrets[`${name}/${key}`] ?? `secret:${name}/${key}`;
    } else {
      assert.fail(`${variable.name}: unsupported valueFrom ${JSON.stringify(variable.valueFrom)}`);
    }
  }
  return env;
}

describe('chart environment against the app config', () => {
  for (const scenario of scenarios().filter((s) => !s.withCrds)) {
    const manifests = renderManifests(scenario);

    test(`when rendered with ${scenario.name}, then every variable set for a process is one the app reads`, () => {
      for (const { kind, nameSuffix } of appContainers) {
        const names = Object.keys(containerEnvironment(manifests, appContainer(manifests, kind, nameSuffix)));
        const unknown = names.filter((name) => !knownVariables.has(name) && !runtimeVariables.has(name));
        assert.deepEqual(unknown, [], `${kind}${nameSuffix} sets variables platform/config.ts does not know`);
      }
    });

    if (!scenario.valuesFile) continue; // the defaults lack the infra outputs (topic, queues) by design

    test(`when rendered with ${scenario.name}, then each process gets every variable it requires and accepts the values`, () => {
      for (const { kind, nameSuffix, role } of appContainers) {
        const env = containerEnvironment(manifests, appContainer(manifests, kind, nameSuffix), {
          'ingesta-database/DATABASE_URL': 'postgres://ingesta@db.internal:5432/ingesta',
        });
        const required = Object.entries(configVariables)
          .filter(([, variable]) =>
            ((variable as { requiredFor?: readonly Role[] }).requiredFor ?? []).includes(role),
          )
          .map(([name]) => name);
        assert.deepEqual(
          required.filter((name) => !env[name]),
          [],
          `${kind}${nameSuffix} lacks variables the ${role} requires`,
        );
        try {
          loadConfig(role, env);
        } catch (err) {
          assert.fail(`${kind}${nameSuffix}: ${err instanceof ConfigError ? err.message : err}`);
        }
      }
    });
  }
});

/** A TCP port free on loopback right now. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** The image runs `node … dist/x.js` from /app; here the same relative path of the TypeScript source. */
function sourceArgs(args: string[]): string[] {
  return args.map((arg) => {
    const match = /^(\.\/)?dist\/(.+)\.js$/.exec(arg);
    if (!match) return arg;
    const source = `${match[1] ?? ''}${match[2]}.ts`;
    assert.ok(
      existsSync(join(repoRoot, source)),
      `the chart runs ${arg}, built from ${source}, which does not exist`,
    );
    return source;
  });
}

interface RunningProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function run(command: string[], env: Record<string, string>): RunningProcess {
  const [executable, ...args] = command;
  assert.equal(executable, 'node', 'the image has node and no shell');
  // Only what the chart sets, plus PATH to find node: nothing leaks in from the test's environment.
  const child = spawn(process.execPath, sourceArgs(args), {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr!.on('data', (chunk) => {
    output += chunk;
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return { child, output: () => output.slice(-4000), exited };
}

/** Polls like the kubelet: GET every periodSeconds until 200, within periodSeconds × failureThreshold. */
async function probeUntilOk(app: RunningProcess, url: string, probe: Container): Promise<void> {
  const deadline = Date.now() + probe.periodSeconds * probe.failureThreshold * 1000;
  let last = 'no answer';
  while (Date.now() < deadline) {
    const status = await fetch(url, { signal: AbortSignal.timeout(probe.timeoutSeconds * 1000) }).then(
      (response) => response.status,
      (err: Error) => err.message,
    );
    if (status === 200) return;
    last = String(status);
    const exited = await Promise.race([app.exited.then(() => true), delay(200, false)]);
    if (exited) assert.fail(`process exited before ${url} answered:\n${app.output()}`);
  }
  assert.fail(`${url} never answered 200 (last: ${last}):\n${app.output()}`);
}

/** The containerPort a probe's (named or numbered) port resolves to. */
function probePort(container: Container, port: string | number): number {
  if (typeof port === 'number') return port;
  const named = container.ports.find((candidate: { name: string }) => candidate.name === port);
  assert.ok(named, `probe port ${port} is not a port of container ${container.name}`);
  return named.containerPort;
}

describe('rendered commands, environment and probes run against the app', () => {
  const serverUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const databaseName = `ingesta_chart_${randomBytes(4).toString('hex')}`;
  const databaseUrl = new URL(serverUrl);
  databaseUrl.pathname = `/${databaseName}`;
  const running: RunningProcess[] = [];
  let messaging: LocalMessaging;
  let manifests: Manifest[];

  before(async () => {
    // fauxqs on loopback with the topic, queue, DLQ and raw-delivery subscription created as on AWS.
    messaging = await startLocalMessaging();
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    await admin.query(`create database ${databaseName}`);
    await admin.end();
    const [apiPort, apiAdminPort, consumerAdminPort] = [await freePort(), await freePort(), await freePort()];
    manifests = renderManifests({ valuesFile: 'ci/production-values.yaml', withCrds: false }, [
      '--set',
      [
        `aws.region=${messaging.region}`,
        `aws.topicArn=${messaging.topicArn}`,
        `aws.queueUrl=${messaging.queueUrl}`,
        `aws.dlqUrl=${messaging.dlqUrl}`,
        `api.port=${apiPort}`,
        `api.adminPort=${apiAdminPort}`,
        `consumer.adminPort=${consumerAdminPort}`,
        // Keeps the run short: a long poll of 20 s would hold the consumer's drain that long.
        'consumer.waitTimeSec=1',
        // No collector here; the variable names are checked above all the same.
        'telemetry.otlpEndpoint=',
        // Without a token the helm test expects the API to refuse anonymous reads.
        'tests.authTokenSecret.name=',
      ].join(','),
    ]);
  });

  after(async () => {
    for (const app of running) app.child.kill('SIGKILL');
    await Promise.all(running.map((app) => app.exited));
    await messaging?.stop();
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    await admin.query(`drop database if exists ${databaseName} with (force)`);
    await admin.end();
  });

  const secrets = () => ({ 'ingesta-database/DATABASE_URL': databaseUrl.toString() });
  // AWS_ENDPOINT_URL stands in for AWS itself; the chart never sets it.
  const environment = (container: Container) => ({
    ...containerEnvironment(manifests, container, secrets()),
    AWS_ENDPOINT_URL: messaging.endpoint,
  });
  const commandOf = (container: Container): string[] => [...container.command, ...(container.args ?? [])];

  test('when the migration hook command runs, then it migrates the scratch database and exits 0', async () => {
    const job = appContainer(manifests, 'Job', '-migrations');
    const migrations = run(commandOf(job), environment(job));
    running.push(migrations);
    assert.equal(await migrations.exited, 0, migrations.output());
  });

  test('when the maintenance command runs after the migrations, then it exits 0 and has nothing to do', async () => {
    const cronJob = appContainer(manifests, 'CronJob', '-maintenance');
    const maintenance = run(commandOf(cronJob), environment(cronJob));
    running.push(maintenance);
    assert.equal(await maintenance.exited, 0, maintenance.output());
    assert.match(maintenance.output(), /"retentionDays":0,"msg":"nothing to do"/);
  });

  test('when the API and consumer commands run, then every probe answers 200 on the port and path the chart names', async () => {
    for (const suffix of ['-api', '-consumer']) {
      const container = appContainer(manifests, 'Deployment', suffix);
      const app = run(commandOf(container), environment(container));
      running.push(app);
      for (const probeName of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
        const probe = container[probeName];
        const url = `http://127.0.0.1:${probePort(container, probe.httpGet.port)}${probe.httpGet.path}`;
        await probeUntilOk(app, url, probe);
      }
    }
  });

  test('when the helm test pod command runs against the API Service ports, then it passes', async () => {
    const pod = getManifest(manifests, 'Pod', '-test');
    const container = pod.spec.containers[0];
    const api = appContainer(manifests, 'Deployment', '-api');
    const env = containerEnvironment(manifests, container);
    for (const [name, suffix] of [
      ['INGESTA_TEST_API_URL', '-api'],
      ['INGESTA_TEST_ADMIN_URL', '-api-admin'],
    ] as const) {
      const service = getManifest(manifests, 'Service', suffix);
      // Service DNS name and port → the container port behind it, on this machine.
      const url = new URL(env[name]!);
      assert.equal(url.hostname, service.metadata.name);
      const servicePort = service.spec.ports.find((port: { port: number }) => port.port === Number(url.port));
      assert.ok(servicePort, `${name} uses port ${url.port}, which the Service does not expose`);
      env[name] = `http://127.0.0.1:${probePort(api, servicePort.targetPort)}`;
    }
    const [executable, ...args] = commandOf(container);
    assert.equal(executable, 'node');
    const check = spawn(process.execPath, args, {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    check.stdout.on('data', (chunk) => {
      output += chunk;
    });
    check.stderr.on('data', (chunk) => {
      output += chunk;
    });
    const [code] = await once(check, 'exit');
    assert.equal(code, 0, output);
    assert.match(output, /ok readiness/);
    assert.match(output, /ok list events/);
  });

  test('when the processes get SIGTERM, then they drain and exit 0 within the grace period after the preStop sleep', async () => {
    const apps = running.filter((app) => app.child.exitCode === null);
    assert.equal(apps.length, 2, 'the API and the consumer are running');
    for (const [app, suffix] of apps.map((p, i) => [p, i === 0 ? '-api' : '-consumer'] as const)) {
      const spec = getManifest(manifests, 'Deployment', suffix).spec.template.spec;
      const preStopSeconds = spec.containers[0].lifecycle?.preStop?.sleep?.seconds ?? 0;
      const budgetMs = (spec.terminationGracePeriodSeconds - preStopSeconds) * 1000;
      const startedAt = Date.now();
      app.child.kill('SIGTERM');
      const code = await Promise.race([app.exited, delay(budgetMs, 'killed by the kubelet', { ref: false })]);
      assert.equal(code, 0, `${suffix} after ${Date.now() - startedAt} ms:\n${app.output()}`);
    }
  });
});

test('when the image is built, then dist/ mirrors the source tree the contract test runs', () => {
  const config = JSON.parse(readFileSync(join(repoRoot, 'tsconfig.build.json'), 'utf8'));
  assert.equal(config.compilerOptions?.outDir?.replace(/^\.\//, ''), 'dist');
  assert.equal(config.compilerOptions?.rootDir?.replace(/^\.\/?/, '') || '.', '.');
});
