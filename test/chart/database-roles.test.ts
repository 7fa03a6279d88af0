import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createDatabase, type Database } from '../../db/database.ts';
import { EventRepository } from '../../db/event-repository.ts';
import { migrateLatest } from '../../db/migrate.ts';
import { createPartitions } from '../../db/partitions.ts';
import { newEvent } from '../support/events.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import {
  chartDir,
  findManifest,
  getManifest,
  type Manifest,
  podSpecs,
  render,
  renderError,
  renderManifests,
  repoRoot,
} from './support/chart.ts';
import { validateStrict } from './support/kubernetes-schemas.ts';
import { restrictedViolations } from './support/pod-security.ts';

const script = readFileSync(join(chartDir, 'files', 'database-roles.mjs'), 'utf8');

/** Runs the hook's script as the Job does: `node --input-type=module -e`, from the image's /app. */
function runRolesJob(migrationUrl: string, appUrl: string) {
  return spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', DATABASE_URL: migrationUrl, DATABASE_APP_URL: appUrl },
  });
}

function withUser(url: string, user: string, password: string): string {
  const parsed = new URL(url);
  parsed.username = user;
  parsed.password = encodeURIComponent(password);
  return parsed.toString();
}

describe('the database-roles hook (charts/ingesta/files/database-roles.mjs) against PostgreSQL', () => {
  let database: TestDatabase;
  let owner: Database;
  let appUrl: string;

  before(async () => {
    database = await createTestDatabase();
    owner = createDatabase({
      url: database.url,
      poolMax: 2,
      statementTimeoutMs: 5_000,
      applicationName: 'test',
    });
    await migrateLatest(owner, database.url);
    appUrl = withUser(database.url, `ingesta_app_${process.pid}`, "p@ss:w/rd'%?");
  });
  after(async () => {
    const appUser = new URL(appUrl).username;
    await owner.raw(`drop owned by ingesta_app, ${appUser} cascade`).catch(() => undefined);
    await owner.destroy();
    await database.drop();
    // Roles are per server, not per database: on a shared server (DATABASE_URL) remove them too.
    if (process.env.DATABASE_URL) {
      const server = new pg.Client({ connectionString: process.env.DATABASE_URL });
      await server.connect();
      await server.query(`drop role if exists ${appUser}, ingesta_app`).catch(() => undefined);
      await server.end();
    }
  });

  test('when the hook runs twice, then it succeeds both times (idempotent)', () => {
    for (const attempt of [1, 2]) {
      const run = runRolesJob(database.url, appUrl);
      assert.equal(run.status, 0, `attempt ${attempt}: ${run.stderr}`);
    }
  });

  test('when the app connects with its own URL, then it stores and reads events as the processes do', async () => {
    const app = createDatabase({
      url: appUrl,
      poolMax: 2,
      statementTimeoutMs: 5_000,
      applicationName: 'test',
    });
    try {
      const repository = new EventRepository(app);
      const time = '2026-01-10T08:00:05.000Z';
      // The maintenance job (migration role) creates each month's partition ahead of time.
      await createPartitions(owner, [new Date(time)]);
      const result = await repository.insertBatch([
        newEvent({
          specversion: '1.0',
          id: 'o-1',
          source: '/shop/web',
          type: 'order.created',
          time,
          data: { q: 2 },
        }),
      ]);
      assert.ok(result);
      const rows = await app.raw('select count(*)::int as n from events');
      assert.equal(rows.rows[0].n, 1);
    } finally {
      await app.destroy();
    }
  });

  test("when an event falls in a month without a partition, then the app creates it through the migration role's function", async () => {
    const app = createDatabase({
      url: appUrl,
      poolMax: 1,
      statementTimeoutMs: 5_000,
      applicationName: 'test',
    });
    try {
      const time = '2019-03-01T00:00:00.000Z';
      await new EventRepository(app).insertBatch([
        newEvent({ specversion: '1.0', id: 'old', source: '/shop/web', type: 'order.created', time }),
      ]);
      const { rows } = await owner.raw<{ rows: { owner: string }[] }>(
        `select pg_get_userbyid(relowner) as owner from pg_class where relname = 'events_y2019m03'`,
      );
      assert.equal(
        rows[0]?.owner,
        new URL(database.url).username || 'postgres',
        'owned by the migration role',
      );
      const stored = await app.raw(`select count(*)::int as n from events where id = 'old'`);
      assert.equal(stored.rows[0].n, 1);
    } finally {
      await app.destroy();
    }
  });

  test('when the app asks the function for more than one month ahead of its bound, or for no month start, then it refuses (22023)', async () => {
    const client = new pg.Client({ connectionString: appUrl });
    await client.connect();
    try {
      for (const month of ['2400-01-01T00:00:00Z', '2026-01-15T00:00:00Z']) {
        await assert.rejects(
          client.query('select ingesta_create_event_partition($1::timestamptz)', [month]),
          (error: { code?: string }) => error.code === '22023',
          month,
        );
      }
    } finally {
      await client.end();
    }
  });

  test('when the app tries DDL or the migration bookkeeping, then PostgreSQL refuses (42501)', async () => {
    const client = new pg.Client({ connectionString: appUrl });
    await client.connect();
    try {
      for (const sql of [
        'create table intruder (id int)',
        'drop table events',
        'alter table events add column x int',
        'select * from ingesta_migrations',
        'truncate events',
      ]) {
        await assert.rejects(client.query(sql), (error: { code?: string }) => error.code === '42501', sql);
      }
    } finally {
      await client.end();
    }
  });

  test('when the app URL names the migration role itself, then the hook fails instead of granting nothing', () => {
    const run = runRolesJob(database.url, database.url);
    assert.notEqual(run.status, 0);
    assert.match(run.stderr, /the migration role: give the app its own user/);
  });
});

describe('the database-roles hook in the chart', () => {
  const appRole = [
    '--set',
    'database.appRole.enabled=true,database.existingSecret.migrationKey=DATABASE_MIGRATION_URL',
  ];
  const secretKey = (env: { name: string; valueFrom?: { secretKeyRef?: { key: string } } }[], name: string) =>
    env.find((variable) => variable.name === name)?.valueFrom?.secretKeyRef?.key;

  test('when appRole is on, then the hook runs after the migrations as the migration role, with the app URL to grant', () => {
    const manifests = renderManifests({ withCrds: false }, appRole);
    const job = getManifest(manifests, 'Job', '-database-roles');
    const migrations = getManifest(manifests, 'Job', '-migrations');
    const weight = (manifest: Manifest) => Number(manifest.metadata.annotations['helm.sh/hook-weight']);
    assert.ok(weight(job) > weight(migrations), 'after the migrations');
    assert.equal(job.metadata.annotations['helm.sh/hook'], 'pre-install,pre-upgrade');
    const container = job.spec.template.spec.containers[0];
    assert.equal(secretKey(container.env, 'DATABASE_URL'), 'DATABASE_MIGRATION_URL');
    assert.equal(secretKey(container.env, 'DATABASE_APP_URL'), 'DATABASE_URL');
    assert.deepEqual(container.command.slice(0, 3), ['node', '--input-type=module', '-e']);
    assert.equal(container.command[3], script, 'the script as tested above');
    assert.equal(
      job.spec.template.metadata.labels['app.kubernetes.io/component'],
      'migrations',
      "the migrations' NetworkPolicy admits it",
    );
    assert.deepEqual(validateStrict(job), []);
    assert.deepEqual(podSpecs([job]).flatMap(restrictedViolations), []);
    const migrationsEnv = migrations.spec.template.spec.containers[0].env;
    assert.equal(secretKey(migrationsEnv, 'DATABASE_URL'), 'DATABASE_MIGRATION_URL');
    const maintenance = getManifest(manifests, 'CronJob', '-maintenance');
    assert.equal(
      secretKey(maintenance.spec.jobTemplate.spec.template.spec.containers[0].env, 'DATABASE_URL'),
      'DATABASE_MIGRATION_URL',
    );
    const api = getManifest(manifests, 'Deployment', '-api').spec.template.spec.containers[0];
    assert.equal(secretKey(api.env, 'DATABASE_URL'), 'DATABASE_URL', 'the app keeps its own login');
  });

  test('when the ExternalSecret creates the Secret, then it copies both URLs', () => {
    const manifests = renderManifests({ withCrds: true }, [
      ...appRole,
      '--set',
      'database.externalSecret.enabled=true,database.externalSecret.remoteKey=ingesta/prod/database,database.externalSecret.remoteProperty=appUrl,database.externalSecret.migrationRemoteProperty=url',
    ]);
    assert.deepEqual(getManifest(manifests, 'ExternalSecret').spec.data, [
      { secretKey: 'DATABASE_URL', remoteRef: { key: 'ingesta/prod/database', property: 'appUrl' } },
      { secretKey: 'DATABASE_MIGRATION_URL', remoteRef: { key: 'ingesta/prod/database', property: 'url' } },
    ]);
  });

  test('when appRole is on without a separate migration key, then rendering fails', () => {
    const error = renderError({ withCrds: false }, ['--set', 'database.appRole.enabled=true']);
    assert.match(error, /database\.appRole\.enabled needs database\.existingSecret\.migrationKey/);
  });

  test('when appRole is off (the default), then no hook and every job uses the one URL', () => {
    assert.equal(findManifest(render({ withCrds: false }), 'Job', '-database-roles'), undefined);
  });
});
