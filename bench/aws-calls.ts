/**
 * What an AWS SDK call costs the process that makes it: the CPU time of the calls ingesta makes on
 * its hot paths (SNS PublishBatch in the API, SQS ReceiveMessage and DeleteMessageBatch in the
 * consumer), through the SDK as ingesta makes them, against the same requests made by hand: the
 * same bodies, signed with SigV4 by node:crypto, sent over a kept-alive connection, their answers
 * parsed (and SQS bodies checked against their MD5, as the SDK does). It tells how much of B1's
 * and B3's gap to their baselines is the SDK's own work.
 */
import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import { PublishBatchCommand } from '@aws-sdk/client-sns';
import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  type ReceiveMessageCommandInput,
} from '@aws-sdk/client-sqs';
import { createSnsClient, createSqsClient } from '../platform/aws.ts';
import { type OutgoingMessage, toOutgoingMessage } from '../platform/event-message.ts';
import { type Emulator, startEmulator } from './support/backends.ts';
import { createOrderEvents, runPrefix } from './support/events.ts';
import { type Benchmark, compare, runBenchmarks } from './support/harness.ts';
import { preload, purgeQueue } from './support/queue.ts';

/** Entries per PublishBatch: what the API's calls carried under B1's load (7.8 on average). */
const entriesPerPublish = 8;
/** Calls in flight at once, as several requests' publishes or several pollers are. */
const concurrency = 4;
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

/** AWS Signature Version 4, header-based, for a POST to `/` of one service; the day's key kept. */
export function sigV4(region: string, service: string) {
  const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();
  const sha256 = (data: string) => createHash('sha256').update(data).digest('hex');
  let day = '';
  let key = Buffer.alloc(0);
  return (
    host: string,
    headers: Record<string, string>,
    body: string,
    now = new Date(),
  ): Record<string, string> => {
    const amzDate = now.toISOString().replace(/[-:]|\.\d{3}/g, '');
    if (amzDate.slice(0, 8) !== day) {
      day = amzDate.slice(0, 8);
      key = hmac(
        hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, day), region), service),
        'aws4_request',
      );
    }
    const signed: Record<string, string> = { host, 'x-amz-date': amzDate };
    for (const [name, value] of Object.entries(headers)) signed[name.toLowerCase()] = value;
    const names = Object.keys(signed).sort();
    const canonicalHeaders = names.map((name) => `${name}:${String(signed[name]).trim()}\n`).join('');
    const signedHeaders = names.join(';');
    const canonical = `POST\n/\n\n${canonicalHeaders}\n${signedHeaders}\n${sha256(body)}`;
    const scope = `${day}/${region}/${service}/aws4_request`;
    const signature = createHmac('sha256', key)
      .update(`AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${sha256(canonical)}`)
      .digest('hex');
    signed.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return signed;
  };
}

/** The SDK's form encoding: `encodeURIComponent` plus the characters it leaves alone that RFC 3986 reserves. */
const formEncode = (value: string) =>
  encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** POSTs a signed body to the emulator and resolves with the answer's text; 3 s at most, as the SDK's SNS client. */
function poster(emulator: Emulator, service: 'sns' | 'sqs') {
  const url = new URL(emulator.endpoint);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
  const sign = sigV4(emulator.region, service);
  return {
    post(headers: Record<string, string>, body: string): Promise<string> {
      const signed = sign(url.host, { ...headers, 'content-length': String(Buffer.byteLength(body)) }, body);
      return new Promise((resolve, reject) => {
        const req = http.request(
          { host: url.hostname, port: url.port, method: 'POST', path: '/', agent, headers: signed },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              text += chunk;
            });
            res.on('end', () =>
              (res.statusCode ?? 0) < 300 ? resolve(text) : reject(new Error(`${res.statusCode}: ${text}`)),
            );
          },
        );
        req.setTimeout(3_000, () => req.destroy(new Error('no answer within 3 s')));
        req.on('error', reject);
        req.end(body);
      });
    },
    destroy: () => agent.destroy(),
  };
}

/** The Query-protocol form body of a PublishBatch, as the SDK writes it. */
function publishBatchForm(topicArn: string, messages: OutgoingMessage[]): string {
  const params: string[] = ['Action=PublishBatch', 'Version=2010-03-31', `TopicArn=${formEncode(topicArn)}`];
  messages.forEach((message, i) => {
    const entry = `PublishBatchRequestEntries.member.${i + 1}`;
    params.push(`${entry}.Id=${i}`, `${entry}.Message=${formEncode(message.body)}`);
    Object.entries(message.attributes).forEach(([name, value], j) => {
      const attribute = `${entry}.MessageAttributes.entry.${j + 1}`;
      params.push(
        `${attribute}.Name=${formEncode(name)}`,
        `${attribute}.Value.DataType=${formEncode(value.DataType ?? 'String')}`,
        `${attribute}.Value.StringValue=${formEncode(value.StringValue ?? '')}`,
      );
    });
  });
  return params.join('&');
}

/** The entry Ids a PublishBatch answer lists as successful; throws on any failed entry. */
function publishedIds(xml: string): string[] {
  const section = (name: string) => new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(xml)?.[1] ?? '';
  const failed = section('Failed');
  if (failed.includes('<member>')) throw new Error(`PublishBatch entries failed: ${failed}`);
  return [...section('Successful').matchAll(/<Id>([^<]*)<\/Id>/g)].map((m) => m[1] as string);
}

/** CPU microseconds per call of `call`, on `concurrency` loops, after a warm-up. */
async function cpuPerCall(calls: number, call: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(200, calls); i++) await call();
  const before = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = 0; i < calls / concurrency; i++) await call();
    }),
  );
  const used = process.cpuUsage(before);
  return (used.user + used.system) / calls;
}

export const awsCallsBenchmark: Benchmark = {
  name: 'aws-calls',
  title: 'AWS SDK calls: CPU per call through the SDK vs the same requests by hand',
  async run(context) {
    const emulator = await startEmulator();
    const aws = { region: emulator.region, endpointUrl: emulator.endpoint };
    const sns = createSnsClient(aws);
    const sqs = createSqsClient(aws, 0);
    const snsByHand = poster(emulator, 'sns');
    const sqsByHand = poster(emulator, 'sqs');
    const prefix = runPrefix('aws-calls');
    const next = createOrderEvents(prefix);
    const messages = () =>
      Array.from({ length: entriesPerPublish }, () => toOutgoingMessage(next(), Date.now()));
    const calls = context.quick ? 400 : 3_000;
    const rounds = context.quick ? 1 : 3;

    const receiveParams: ReceiveMessageCommandInput = {
      QueueUrl: emulator.queueUrl,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 0,
      MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
      MessageAttributeNames: ['All'],
    };
    const targets = {
      publishSdk: async () => {
        const { Successful = [], Failed = [] } = await sns.send(
          new PublishBatchCommand({
            TopicArn: emulator.topicArn,
            PublishBatchRequestEntries: messages().map((m, i) => ({
              Id: String(i),
              Message: m.body,
              MessageAttributes: m.attributes,
            })),
          }),
        );
        if (Failed.length > 0 || Successful.length !== entriesPerPublish) {
          throw new Error(`PublishBatch: ${Successful.length} published, ${JSON.stringify(Failed)} failed`);
        }
      },
      publishByHand: async () => {
        const xml = await snsByHand.post(
          { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
          publishBatchForm(emulator.topicArn, messages()),
        );
        const ids = publishedIds(xml);
        if (ids.length !== entriesPerPublish) throw new Error(`PublishBatch: ${ids.length} published`);
      },
      receiveDeleteSdk: async () => {
        const { Messages = [] } = await sqs.send(new ReceiveMessageCommand(receiveParams));
        if (Messages.length === 0) throw new Error('the queue ran dry');
        const { Failed = [] } = await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: emulator.queueUrl,
            Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
          }),
        );
        if (Failed.length > 0) throw new Error(`delete failed: ${JSON.stringify(Failed)}`);
      },
      receiveDeleteByHand: async () => {
        const target = (action: string) => ({
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': `AmazonSQS.${action}`,
        });
        const received = JSON.parse(
          await sqsByHand.post(target('ReceiveMessage'), JSON.stringify(receiveParams)),
        ) as { Messages?: { Body: string; MD5OfBody: string; ReceiptHandle: string }[] };
        const list = received.Messages ?? [];
        if (list.length === 0) throw new Error('the queue ran dry');
        for (const m of list) {
          if (createHash('md5').update(m.Body).digest('hex') !== m.MD5OfBody) throw new Error('MD5 mismatch');
        }
        const deleted = JSON.parse(
          await sqsByHand.post(
            target('DeleteMessageBatch'),
            JSON.stringify({
              QueueUrl: emulator.queueUrl,
              Entries: list.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
            }),
          ),
        ) as { Failed?: unknown[] };
        if (deleted.Failed?.length) throw new Error(`delete failed: ${JSON.stringify(deleted.Failed)}`);
      },
    };
    type Name = keyof typeof targets;
    const best = new Map<Name, number>();
    const seen = new Map<Name, number[]>();
    try {
      // Interleaved rounds, the lowest CPU per call kept: noise only ever adds CPU time. The order
      // turns each round, so no target always runs after the same one (and its garbage).
      const names = Object.keys(targets) as Name[];
      for (let round = 0; round < rounds; round++) {
        const turn = round % names.length;
        for (const name of [...names.slice(turn), ...names.slice(0, turn)]) {
          const sqsTarget = name.startsWith('receive');
          // Enough for every receive of the round, warm-up included, to get 10 messages.
          if (sqsTarget)
            await preload(emulator, emulator.queueUrl, (calls + 200) * 10, `${prefix}-${name}-${round}`);
          const us = await cpuPerCall(calls, targets[name]);
          seen.set(name, [...(seen.get(name) ?? []), us]);
          best.set(name, Math.min(best.get(name) ?? Number.POSITIVE_INFINITY, us));
          await purgeQueue(emulator);
        }
      }
      for (const [name, values] of seen) {
        context.progress(`  ${name}: ${values.map(Math.round).join(', ')} µs CPU per call`);
      }
    } finally {
      sns.destroy();
      sqs.destroy();
      snsByHand.destroy();
      sqsByHand.destroy();
      await emulator.stop();
    }
    const benchmark = 'AWS SDK calls';
    const us = (name: Name) => best.get(name) ?? Number.NaN;
    return [
      compare(
        {
          benchmark,
          name: `SNS PublishBatch of ${entriesPerPublish}, CPU per call through the SDK`,
          unit: 'µs',
          value: us('publishSdk'),
        },
        { name: 'the same request by hand', value: us('publishByHand') },
      ),
      compare(
        {
          benchmark,
          name: 'SQS ReceiveMessage of 10 + DeleteMessageBatch, CPU per pair through the SDK',
          unit: 'µs',
          value: us('receiveDeleteSdk'),
        },
        { name: 'the same requests by hand', value: us('receiveDeleteByHand') },
      ),
    ];
  },
};

if (import.meta.main) await runBenchmarks([awsCallsBenchmark]);
