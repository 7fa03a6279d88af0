import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { auditStore, recordAuditSamples } from '../../db/store-audit.ts';
import { orderEvent, type Stack, startStack } from '../support/stack.ts';

const run = promisify(execFile);

describe('the store audit', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ env: { AUDIT_SAMPLE_RATE: '1' } });
  });
  after(() => stack.close());

  const samples = async () =>
    Number(
      (await stack.db.raw<{ rows: { n: string }[] }>('select count(*) as n from audit_samples')).rows[0]?.n,
    );

  test('when sampled events were accepted and stored, then the audit verifies each and finds none missing', async () => {
    const events = [orderEvent(), orderEvent(), orderEvent()];
    await stack.http
      .post('/v1/events')
      .set('content-type', 'application/cloudevents-batch+json')
      .send(JSON.stringify(events))
      .expect(202);
    await stack.handledMore(3);
    // The API records its samples off the response path: each check is a query, not a sleep.
    while ((await samples()) < 3);
    const result = await auditStore(stack.db, { settleMinutes: 0 });
    assert.deepEqual(result, { verified: 3, missing: [] });
    assert.equal(await samples(), 0, 'verified samples are deleted');
  });

  test('when an accepted event is not in the store after the settle time, then the audit reports it and the command fails', async () => {
    const lost = { source: '/shop/web', id: 'order-lost-1' };
    const recent = { source: '/shop/web', id: 'order-just-accepted' };
    await recordAuditSamples(stack.db, [lost], new Date(Date.now() - 3_600_000));
    await recordAuditSamples(stack.db, [recent], new Date());
    const result = await auditStore(stack.db);
    assert.equal(result.verified, 0);
    assert.deepEqual(
      result.missing.map(({ source, id }) => ({ source, id })),
      [lost],
      'only the one past the settle time',
    );

    const audit = run(process.execPath, ['db/cli.ts', 'audit'], {
      env: { PATH: process.env.PATH ?? '', DATABASE_URL: stack.database.url },
    });
    await assert.rejects(audit, (err: { code?: number; stdout?: string }) => {
      assert.equal(err.code, 1);
      const line = JSON.parse(String(err.stdout).trim().split('\n').at(-1) ?? '{}');
      assert.match(line.msg, /store audit: accepted events are not stored/);
      assert.deepEqual(
        line.missing.map(({ source, id }: { source: string; id: string }) => ({ source, id })),
        [lost],
      );
      return true;
    });
  });
});
