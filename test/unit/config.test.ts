import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, configVariables, loadConfig } from '../../platform/config.ts';

const deployed = {
  DATABASE_URL: 'postgres://u:p@db:5432/ingesta',
  INGEST_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:ingesta-events',
  INGEST_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/ingesta-events',
  INGEST_DLQ_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/ingesta-events-dlq',
};
/** Most cases are not about auth: an API that runs without it on purpose. */
const base = { ...deployed, AUTH_DISABLED: 'true' };

const problemsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail('expected a ConfigError');
};

describe('config', () => {
  test('when nothing optional is set, then the documented defaults apply', () => {
    const c = loadConfig('api', base);
    assert.equal(c.api.port, 8080);
    assert.equal(c.adminPort, 9464);
    assert.equal(c.shutdownTimeoutMs, 20_000);
    assert.equal(c.consumer.batchSize, 10);
    assert.equal(c.consumer.waitTimeSec, 20);
    assert.equal(c.aws.endpointUrl, undefined);
  });

  test('when a role misses its required variables, then every missing one is named', () => {
    const problems = problemsOf(() => loadConfig('consumer', { DATABASE_URL: base.DATABASE_URL }));
    assert.equal(problems.length, 2);
    assert.match(problems.join('\n'), /INGEST_QUEUE_URL/);
    assert.match(problems.join('\n'), /INGEST_DLQ_URL/);
    // The API does not need the queue.
    assert.doesNotThrow(() =>
      loadConfig('api', {
        DATABASE_URL: base.DATABASE_URL,
        INGEST_TOPIC_ARN: base.INGEST_TOPIC_ARN,
        AUTH_DISABLED: 'true',
      }),
    );
  });

  test('when the DLQ tool loads its configuration, then it needs both queues and no database', () => {
    const queues = { INGEST_QUEUE_URL: base.INGEST_QUEUE_URL, INGEST_DLQ_URL: base.INGEST_DLQ_URL };
    assert.equal(loadConfig('dlq', queues).consumer.dlqUrl, base.INGEST_DLQ_URL);
    assert.deepEqual(
      problemsOf(() => loadConfig('dlq', {})).map((p) => p.split(':')[0]),
      ['INGEST_QUEUE_URL', 'INGEST_DLQ_URL'],
    );
  });

  test('when values are out of bounds or malformed, then each is reported with its name', () => {
    const problems = problemsOf(() =>
      loadConfig('api', {
        ...base,
        PORT: '70000',
        CONSUMER_BATCH_SIZE: '11',
        LOG_LEVEL: 'loud',
        DATABASE_URL: 'mysql://x',
      }),
    );
    for (const name of ['PORT', 'CONSUMER_BATCH_SIZE', 'LOG_LEVEL', 'DATABASE_URL']) {
      assert.ok(
        problems.some((p) => p.startsWith(name)),
        `${name} reported in ${problems.join('; ')}`,
      );
    }
  });

  test('when timeouts contradict each other, then the config is refused', () => {
    const problems = problemsOf(() =>
      loadConfig('consumer', {
        ...base,
        DATABASE_STATEMENT_TIMEOUT_MS: '30000',
        CONSUMER_VISIBILITY_TIMEOUT_SEC: '60',
      }),
    );
    assert.match(problems.join('\n'), /third of CONSUMER_VISIBILITY_TIMEOUT_SEC/);
    assert.throws(
      () => loadConfig('consumer', { ...base, CONSUMER_POLLERS: '20', DATABASE_POOL_MAX: '5' }),
      /CONSUMER_POLLERS/,
    );
    assert.throws(() => loadConfig('api', { ...base, PORT: '9464' }), /PORT and ADMIN_PORT/);
  });

  test('every variable is documented', () => {
    for (const [name, v] of Object.entries(configVariables)) assert.ok(v.description.length > 10, name);
  });

  test('when an API has no auth config, then it refuses to start in any mode unless AUTH_DISABLED=true', () => {
    for (const NODE_ENV of ['production', 'development', 'test', undefined]) {
      assert.match(
        problemsOf(() => loadConfig('api', { ...deployed, ...(NODE_ENV ? { NODE_ENV } : {}) })).join('\n'),
        /authentication is not configured.*AUTH_DISABLED=true/,
        `NODE_ENV=${NODE_ENV}`,
      );
    }
    assert.equal(
      loadConfig('api', { ...deployed, NODE_ENV: 'production', AUTH_DISABLED: 'true' }).api.auth,
      undefined,
    );
    assert.doesNotThrow(() => loadConfig('consumer', deployed), 'only the API serves callers');
    const auth = {
      AUTH_JWKS_URL: 'https://idp.example/jwks',
      AUTH_ISSUER: 'https://idp.example/',
      AUTH_AUDIENCE: 'ingesta',
    };
    assert.deepEqual(
      loadConfig('api', { ...deployed, NODE_ENV: 'production', ...auth }).api.auth?.algorithms,
      ['RS256', 'PS256', 'ES256', 'EdDSA'],
    );
    assert.match(
      problemsOf(() => loadConfig('api', { ...deployed, AUTH_ISSUER: auth.AUTH_ISSUER })).join(),
      /together/,
    );
    assert.ok(
      problemsOf(() => loadConfig('api', { ...deployed, ...auth, AUTH_ALGORITHMS: 'HS256' })).length > 0,
      'symmetric algorithms are refused',
    );
  });
});
