import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { spawnEntry } from '../support/processes.ts';

describe('startup guards', () => {
  test('when a production API starts without auth config, then it exits 2 naming what is missing', async () => {
    const api = spawnEntry('api', {
      NODE_ENV: 'production',
      DATABASE_URL: 'postgres://u@127.0.0.1:1/db',
      INGEST_TOPIC_ARN: 'arn:aws:sns:us-east-1:000000000000:ingesta-events',
    });
    assert.equal(await api.exited, 2);
    assert.match(api.stderr.join('\n'), /authentication is not configured.*AUTH_DISABLED=true/s);
  });

  test('when the consumer is started with bad values, then it exits 2 listing each of them', async () => {
    const consumer = spawnEntry('consumer', { DATABASE_URL: 'nope', CONSUMER_BATCH_SIZE: '50' });
    assert.equal(await consumer.exited, 2);
    const stderr = consumer.stderr.join('\n');
    for (const name of ['DATABASE_URL', 'CONSUMER_BATCH_SIZE']) assert.match(stderr, new RegExp(name));
  });
});
