import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chunkForSendMessageBatch } from '../../consumer/batch-handler.ts';

const entry = (id: number, bodyBytes: number) => ({
  Id: String(id),
  MessageBody: 'x'.repeat(bodyBytes),
  MessageAttributes: { ingesta_rejection_code: { DataType: 'String', StringValue: 'EVENT_TOO_LARGE' } },
});

test('DLQ moves go at most 10 entries per SendMessageBatch, in order', () => {
  const chunks = chunkForSendMessageBatch(Array.from({ length: 23 }, (_, i) => entry(i, 10)));
  assert.deepEqual(
    chunks.map((c) => c.length),
    [10, 10, 3],
  );
  assert.deepEqual(
    chunks.flat().map((e) => e.Id),
    Array.from({ length: 23 }, (_, i) => String(i)),
  );
});

test('DLQ moves of oversize rejects stay under the 1 MiB per call, attributes included', () => {
  const chunks = chunkForSendMessageBatch(Array.from({ length: 5 }, (_, i) => entry(i, 300 * 1024)));
  assert.deepEqual(
    chunks.map((c) => c.length),
    [3, 2],
  );
  // Two bodies that fit in 1 MiB on their own, but not with their 43 bytes of attributes each.
  const body = (1024 * 1024 - 50) / 2;
  assert.deepEqual(
    chunkForSendMessageBatch([entry(0, body), entry(1, body)]).map((c) => c.length),
    [1, 1],
    'the attributes count against the limit too',
  );
  const exact = (1024 * 1024 - 2 * 43) / 2;
  assert.deepEqual(
    chunkForSendMessageBatch([entry(0, exact), entry(1, exact)]).map((c) => c.length),
    [2],
    'a call of exactly 1 MiB is allowed',
  );
});

test('a reject too big for any call goes alone and does not hold back the others', () => {
  const chunks = chunkForSendMessageBatch([entry(0, 10), entry(1, 2 * 1024 * 1024), entry(2, 10)]);
  assert.deepEqual(
    chunks.map((c) => c.map((e) => e.Id)),
    [['0'], ['1'], ['2']],
  );
});
