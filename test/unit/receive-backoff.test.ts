import assert from 'node:assert/strict';
import { test } from 'node:test';
import { receiveBackoffMs } from '../../consumer/consumer.ts';

test('receive backoff doubles from 250 ms per failure in a row and stops growing at 10 s', () => {
  const middle = () => 0.5;
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 8].map((n) => receiveBackoffMs(n, middle)),
    [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000],
  );
  assert.equal(receiveBackoffMs(1_000, middle), 10_000, 'no overflow after a long outage');
});

test('receive backoff is jittered by ±20 % so pollers do not retry in step', () => {
  assert.equal(
    receiveBackoffMs(3, () => 0),
    800,
  );
  assert.equal(
    receiveBackoffMs(3, () => 0.999_999),
    1200,
  );
});
