import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';

const run = promisify(execFile);

/** `npm run db:migrate` / the chart's hook Job, as a process. */
const cli = (command: 'latest' | 'rollback', databaseUrl: string) =>
  run(process.execPath, ['db/cli.ts', command], {
    env: { PATH: process.env.PATH ?? '', DATABASE_URL: databaseUrl },
  });

describe('migrations', () => {
  let database: TestDatabase;
  const tables = async () => {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ table_name: string }>(
        "select table_name from information_schema.tables where table_schema = 'public' order by 1",
      );
      return rows.map((r) => r.table_name);
    } finally {
      await client.end();
    }
  };

  before(async () => {
    database = await createTestDatabase();
  });
  after(() => database.drop());

  test('when two migrators start at once, then both succeed and the schema is created once', async () => {
    const results = await Promise.all([cli('latest', database.url), cli('latest', database.url)]);
    const messages = results.map((r) => JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}').msg).sort();
    assert.deepEqual(
      messages,
      ['migrations done', 'nothing to do'],
      'one applied, the other waited and found nothing',
    );
    assert.ok((await tables()).includes('events'));
    assert.ok((await tables()).includes('event_counts'));
  });

  test('when migrations run again, then nothing changes', async () => {
    const before = await tables();
    const { stdout } = await cli('latest', database.url);
    assert.match(stdout, /nothing to do/);
    assert.deepEqual(await tables(), before);
  });

  test('when rolled back and migrated again, then the schema comes back', async () => {
    await cli('rollback', database.url);
    const after = await tables();
    assert.ok(!after.includes('events') && !after.includes('event_counts'));
    await cli('latest', database.url);
    assert.ok((await tables()).includes('events'));
  });

  test('when the database is unreachable, then the migrator exits non-zero with a readable error', async () => {
    await assert.rejects(
      cli('latest', 'postgres://postgres@127.0.0.1:1/none'),
      (err: { code?: number; stdout?: string }) => {
        assert.equal(err.code, 1);
        assert.match(err.stdout ?? '', /migration failed/);
        return true;
      },
    );
  });
});
