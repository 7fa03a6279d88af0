import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import {
  ChangeMessageVisibilityBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import { rejectionAttributes } from '../../consumer/batch-handler.ts';
import { runDlqCli } from '../../consumer/dlq/cli.ts';
import { createDatabase } from '../../db/database.ts';
import { EventRepository } from '../../db/event-repository.ts';
import { acceptEvent } from '../../ingest/contract.ts';
import { toOutgoingMessage } from '../../ingest/message.ts';
import { spawnEntry } from '../support/processes.ts';
import { type Backends, orderEvent, startBackends } from '../support/stack.ts';

const run = promisify(execFile);

/** Runs `node scripts/dlq.ts …` as an operator would, with only the given environment. */
async function dlq(args: string[], env: Record<string, string>) {
  try {
    const { stdout, stderr } = await run(process.execPath, ['scripts/dlq.ts', ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('dlq tool', () => {
  let backends: Backends;
  let sqs: SQSClient;
  const valid = orderEvent({ source: `/test/dlq/${crypto.randomUUID()}` });
  const poison = {
    notJson: { body: '{"specversion":', marker: 'p-not-json', id: '' },
    schema: {
      body: JSON.stringify({ specversion: '1.0', id: 'x', source: '/test/dlq' }),
      marker: 'p-schema',
      id: '',
    },
  };

  const receive = async (queueUrl: string, visibilityTimeoutSec = 30) =>
    (
      await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
          VisibilityTimeout: visibilityTimeoutSec,
          MessageAttributeNames: ['All'],
        }),
      )
    ).Messages ?? [];
  const release = (queueUrl: string, messages: Message[]) =>
    sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: messages.map((m, i) => ({
          Id: String(i),
          ReceiptHandle: m.ReceiptHandle,
          VisibilityTimeout: 0,
        })),
      }),
    );
  const depth = async (queueUrl: string) => {
    const { Attributes = {} } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return (
      Number(Attributes.ApproximateNumberOfMessages) +
      Number(Attributes.ApproximateNumberOfMessagesNotVisible)
    );
  };

  before(async () => {
    backends = await startBackends();
    sqs = new SQSClient({
      endpoint: backends.messaging.endpoint,
      region: backends.messaging.region,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    const { queueUrl, dlqUrl } = backends.messaging;

    // A valid event whose deliveries all failed: SQS moves it to the DLQ after maxReceiveCount
    // receives, without a rejection reason (as after a long outage).
    const message = toOutgoingMessage(acceptEvent(valid), Date.now());
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: message.body,
        MessageAttributes: message.attributes,
      }),
    );
    for (let attempt = 0; attempt < 10; attempt++) {
      const messages = await receive(queueUrl);
      if (messages.length === 0) break;
      await release(queueUrl, messages);
    }
    assert.equal(await depth(dlqUrl), 1, 'retries exhausted: the valid event is in the DLQ');

    // Poison, rejected by the consumer with its reason.
    const consumer = spawnEntry('consumer', backends.env);
    try {
      for (const p of Object.values(poison)) {
        const { MessageId } = await sqs.send(
          new SendMessageCommand({
            QueueUrl: queueUrl,
            MessageBody: p.body,
            MessageAttributes: { marker: { DataType: 'String', StringValue: p.marker } },
          }),
        );
        await consumer.waitForLog((l) => l.msg === 'message moved to DLQ' && l.messageId === MessageId);
      }
    } finally {
      assert.equal(await consumer.stop(), 0);
    }
  });
  after(async () => {
    sqs?.destroy();
    await backends?.stop();
  });

  test('when listing, then each message shows its id, code, rejected-at and reason, never its payload', async () => {
    const { code, stdout } = await dlq(['list'], backends.env);
    assert.equal(code, 0);
    const lines = stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /^3 message\(s\) in /);
    assert.match(lines[1] ?? '', /^MESSAGE ID\s+CODE\s+REJECTED AT\s+RECEIVES\s+REASON$/);
    const rows = lines.slice(2);
    assert.equal(rows.length, 3);
    assert.ok(
      rows.some((r) => /^\S+\s+NOT_JSON\s+\d{4}-\d\d-\d\dT\S+Z\s+\d+\s+the body is not valid JSON/.test(r)),
      stdout,
    );
    assert.ok(
      rows.some((r) => /\sSCHEMA_VIOLATION\s.*not an event ingesta accepts/.test(r)),
      stdout,
    );
    assert.ok(
      rows.some((r) => /^\S+\s+-\s+-\s+\d+\s+.*retries exhausted/.test(r)),
      stdout,
    );
    assert.ok(!stdout.includes(valid.id) && !stdout.includes('{"specversion":'), 'no payload is printed');
    assert.equal(await depth(backends.messaging.dlqUrl), 3, 'listing consumes nothing');
  });

  test('when listing with --show-body --json, then each message is one JSON object with its body', async () => {
    const { code, stdout } = await dlq(['list', '--show-body', '--json'], backends.env);
    assert.equal(code, 0);
    const letters = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { messageId: string; code?: string; body: string });
    assert.deepEqual(letters.map((l) => l.code ?? 'none').sort(), ['NOT_JSON', 'SCHEMA_VIOLATION', 'none']);
    assert.ok(letters.some((l) => l.body.includes(valid.id)));
    assert.ok(letters.every((l) => l.messageId.length > 0));
  });

  test('when redriving with --max, then only that many messages move, without their rejection attributes', async () => {
    const { queueUrl, dlqUrl } = backends.messaging;
    const first = await dlq(['redrive', '--max', '1'], backends.env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^1 message\(s\) moved back to /m);
    assert.deepEqual([await depth(dlqUrl), await depth(queueUrl)], [2, 1]);

    const rest = await dlq(['redrive'], backends.env);
    assert.equal(rest.code, 0, rest.stderr);
    assert.match(rest.stdout, /^2 message\(s\) moved back to /m);
    assert.deepEqual([await depth(dlqUrl), await depth(queueUrl)], [0, 3]);

    const redriven = await receive(queueUrl);
    try {
      assert.equal(redriven.length, 3);
      for (const m of redriven) {
        for (const name of Object.values(rejectionAttributes)) {
          assert.equal(m.MessageAttributes?.[name], undefined, `${name} is stripped`);
        }
      }
      assert.deepEqual(
        redriven.map((m) => m.MessageAttributes?.marker?.StringValue ?? 'none').sort(),
        ['none', 'p-not-json', 'p-schema'],
        'the message’s own attributes are kept',
      );
      assert.ok(
        redriven.some((m) => m.MessageAttributes?.ingesta_accepted_at),
        'accepted-at is kept',
      );
    } finally {
      await release(queueUrl, redriven);
    }
  });

  test('when redriven messages are consumed, then the one whose retries ran out is stored and the poison is rejected again', async () => {
    const consumer = spawnEntry('consumer', { ...backends.env, LOG_LEVEL: 'debug' });
    try {
      await Promise.all([
        consumer.waitForLog((l) => l.msg === 'batch stored' && Number(l.inserted) === 1),
        consumer.waitForLog((l) => l.msg === 'message moved to DLQ' && l.code === 'NOT_JSON'),
        consumer.waitForLog((l) => l.msg === 'message moved to DLQ' && l.code === 'SCHEMA_VIOLATION'),
      ]);
    } finally {
      assert.equal(await consumer.stop(), 0);
    }
    const db = createDatabase({
      url: backends.database.url,
      poolMax: 1,
      statementTimeoutMs: 5_000,
      applicationName: 'test',
    });
    try {
      const stored = await new EventRepository(db).get(valid.source, valid.id);
      assert.equal(stored && JSON.parse(stored.text).id, valid.id, 'the redriven event is stored');
    } finally {
      await db.destroy();
    }
    assert.equal(await depth(backends.messaging.dlqUrl), 2, 'the poison is back in the DLQ, with its reason');
  });

  test('when the command line is wrong, then the tool says what and exits 2', async () => {
    const spawned = await dlq(['purge'], backends.env);
    assert.deepEqual([spawned.code, spawned.stdout], [2, '']);
    assert.match(spawned.stderr, /^dlq: unknown command "purge"\nusage: npm run dlq -- list\|redrive/);
    const cases: [string[], Record<string, string>, RegExp][] = [
      [[], backends.env, /a command is required/],
      [['list', '--max', 'ten'], backends.env, /--max must be a whole number/],
      [['redrive', '--max', '0'], backends.env, /--max must be a whole number/],
      [['redrive', '--json'], backends.env, /apply to list only/],
      [['list', '--verbose'], backends.env, /Unknown option '--verbose'/],
      [['list'], { ...backends.env, INGEST_DLQ_URL: '' }, /INGEST_DLQ_URL: required/],
      [['list'], { ...backends.env, INGEST_QUEUE_URL: 'not a url' }, /INGEST_QUEUE_URL/],
    ];
    for (const [args, env, message] of cases) {
      const out: string[] = [];
      const err: string[] = [];
      const code = await runDlqCli(args, env, { out: (l) => out.push(l), err: (l) => err.push(l) });
      assert.equal(code, 2, `${args.join(' ')} exits 2`);
      assert.match(err.join('\n'), message);
      assert.deepEqual(out, []);
    }
  });
});

describe('dlq tool on AWS', () => {
  const dlqUrl = 'https://sqs.eu-west-1.amazonaws.com/123456789012/ingesta-events-dlq';
  const queueUrl = 'https://sqs.eu-west-1.amazonaws.com/123456789012/ingesta-events';
  const env = { INGEST_QUEUE_URL: queueUrl, INGEST_DLQ_URL: dlqUrl, AWS_REGION: 'eu-west-1' };
  const arnOf = (url: string) => `arn:aws:sqs:eu-west-1:123456789012:${url.split('/').at(-1)}`;

  /** Answers SQS calls as AWS would for these two queues, recording each command. */
  function fakeSqs(sent: unknown[]) {
    return {
      async send(command: unknown) {
        sent.push(command);
        if (command instanceof GetQueueAttributesCommand) {
          return { Attributes: { QueueArn: arnOf(command.input.QueueUrl ?? '') } };
        }
        if (command instanceof StartMessageMoveTaskCommand) return { TaskHandle: 'task-1' };
        return {};
      },
      destroy() {},
    } as unknown as SQSClient;
  }

  test('when redriving on AWS without --max, then an SQS message move task moves the DLQ back to the main queue', async () => {
    const sent: unknown[] = [];
    const out: string[] = [];
    const code = await runDlqCli(
      ['redrive'],
      env,
      { out: (l) => out.push(l), err: (l) => out.push(l) },
      { createSqs: () => fakeSqs(sent) },
    );
    assert.equal(code, 0);
    const task = sent.find((c) => c instanceof StartMessageMoveTaskCommand);
    assert.deepEqual(task?.input, { SourceArn: arnOf(dlqUrl), DestinationArn: arnOf(queueUrl) });
    assert.match(out.join('\n'), /task handle task-1/);
  });

  test('when redriving on AWS with --max, then messages are moved one by one instead of by a move task', async () => {
    const sent: unknown[] = [];
    const code = await runDlqCli(
      ['redrive', '--max', '5'],
      env,
      { out: () => {}, err: () => {} },
      { createSqs: () => fakeSqs(sent) },
    );
    assert.equal(code, 0);
    assert.ok(sent.some((c) => c instanceof ReceiveMessageCommand));
    assert.ok(!sent.some((c) => c instanceof StartMessageMoveTaskCommand));
  });
});
