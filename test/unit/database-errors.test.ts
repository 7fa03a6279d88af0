import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isDatabaseUnavailable, isRowRefused } from '../../db/database.ts';

const pgError = (code: string, message = 'error') => Object.assign(new Error(message), { code });

test('when PostgreSQL says it cannot serve now, then the error is an outage for the API and the consumer alike', () => {
  for (const code of [
    '08000',
    '08001',
    '08006',
    '08P01',
    '53000',
    '53100',
    '53200',
    '53300',
    '57P01',
    '57P02',
    '57P03',
    '57014',
    '55000',
    '55P03',
    '58030',
    '28P01',
    '28000',
    'ECONNREFUSED',
    'ECONNRESET',
  ]) {
    assert.equal(isDatabaseUnavailable(pgError(code)), true, code);
    assert.equal(isRowRefused(pgError(code)), false, code);
  }
  const knexTimeout = Object.assign(new Error('Knex: Timeout acquiring a connection'), {
    name: 'KnexTimeoutError',
  });
  assert.equal(isDatabaseUnavailable(knexTimeout), true);
  assert.equal(isDatabaseUnavailable(new Error('wrapped', { cause: pgError('57P03') })), true);
});

test('when the query or the row is at fault, then the error is not an outage', () => {
  for (const code of ['42P01', '42703', '22P02', '23505', '23514', '40001', '42501']) {
    assert.equal(isDatabaseUnavailable(pgError(code)), false, code);
  }
  assert.equal(isDatabaseUnavailable(new TypeError('x is undefined')), false);
  assert.equal(isDatabaseUnavailable('not an error'), false);
});
