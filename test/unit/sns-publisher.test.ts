import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PublishBatchCommand, SNSClient } from '@aws-sdk/client-sns';
import { pino } from 'pino';
import { chunkForPublishBatch, createSnsPublisher, PublishError } from '../../api/sns-publisher.ts';
import { acceptEvent } from '../../ingest/contract.ts';
import { toOutgoingMessage } from '../../ingest/message.ts';

const message = (id: string, dataBytes = 10) =>
  toOutgoingMessage(
    acceptEvent({ specversion: '1.0', id, source: '/s', type: 't', data: 'x'.repeat(dataBytes) }),
    0,
  );

/** SNS answering PublishBatch from a script: partial failures the emulator cannot be made to produce. */
function scriptedSns(script: ((ids: string[]) => { Id: string; Code: string; SenderFault: boolean }[])[]) {
  const calls: string[][] = [];
  const sns = {
    async send(command: PublishBatchCommand) {
      const ids = (command.input.PublishBatchRequestEntries ?? []).map((e) => e.Id as string);
      calls.push(ids);
      const failed = (script[calls.length - 1] ?? (() => []))(ids);
      return {
        Successful: ids.filter((id) => !failed.some((f) => f.Id === id)).map((Id) => ({ Id })),
        Failed: failed,
      };
    },
  } as unknown as SNSClient;
  return { sns, calls };
}

describe('SNS publisher', () => {
  test('when there are 25 small messages, then they go in calls of 10, 10 and 5', () => {
    const chunks = chunkForPublishBatch(Array.from({ length: 25 }, (_, i) => message(String(i))));
    assert.deepEqual(
      chunks.map((c) => c.length),
      [10, 10, 5],
    );
  });

  test('when messages are large, then no call exceeds 256 KiB in all', () => {
    const chunks = chunkForPublishBatch(Array.from({ length: 6 }, (_, i) => message(String(i), 100 * 1024)));
    assert.deepEqual(
      chunks.map((c) => c.length),
      [2, 2, 2],
    );
  });

  test('when SNS fails some entries transiently, then only those are retried and the publish succeeds', async () => {
    const { sns, calls } = scriptedSns([
      (ids) => [{ Id: ids[1] as string, Code: 'InternalError', SenderFault: false }],
    ]);
    const publisher = createSnsPublisher({
      sns,
      topicArn: 'arn:t',
      log: pino({ level: 'silent' }),
      backoffMs: 1,
    });
    await publisher.publish([message('a'), message('b'), message('c')]);
    assert.deepEqual(calls, [['0', '1', '2'], ['1']]);
  });

  test('when entries keep failing, then the publish fails after the bounded attempts', async () => {
    const always = (ids: string[]) => [{ Id: ids[0] as string, Code: 'Throttled', SenderFault: false }];
    const { sns, calls } = scriptedSns([always, always, always, always]);
    const publisher = createSnsPublisher({
      sns,
      topicArn: 'arn:t',
      log: pino({ level: 'silent' }),
      backoffMs: 1,
      maxAttempts: 3,
    });
    await assert.rejects(publisher.publish([message('a')]), PublishError);
    assert.equal(calls.length, 3);
  });

  test('when SNS blames the sender, then the publish fails at once', async () => {
    const { sns, calls } = scriptedSns([
      (ids) => [{ Id: ids[0] as string, Code: 'InvalidParameter', SenderFault: true }],
    ]);
    const publisher = createSnsPublisher({
      sns,
      topicArn: 'arn:t',
      log: pino({ level: 'silent' }),
      backoffMs: 1,
    });
    await assert.rejects(publisher.publish([message('a')]), /InvalidParameter/);
    assert.equal(calls.length, 1);
  });
});
