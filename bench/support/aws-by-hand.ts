/**
 * The SNS and SQS calls ingesta makes on its hot paths, made by hand: the bodies the SDK would send,
 * SigV4-signed with `node:crypto`, POSTed over a kept-alive agent, the answers parsed and checked as
 * the SDK checks them. No retries, no credential chain, no endpoint rules: what a call costs at the
 * least, for the benchmarks' baselines (`aws-calls`, and the drain's by-hand queue baseline).
 */
import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import type { ReceiveMessageCommandInput } from '@aws-sdk/client-sqs';
import type { OutgoingMessage } from '../../ingest/message.ts';
import type { Emulator } from './backends.ts';

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

/** AWS Signature Version 4, header-based, for a POST to `/` of one service; the day's key kept. */
function sigV4(region: string, service: string) {
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
export function poster(emulator: Emulator, service: 'sns' | 'sqs') {
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
export function publishBatchForm(topicArn: string, messages: OutgoingMessage[]): string {
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
export function publishedIds(xml: string): string[] {
  const section = (name: string) => new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(xml)?.[1] ?? '';
  const failed = section('Failed');
  if (failed.includes('<member>')) throw new Error(`PublishBatch entries failed: ${failed}`);
  return [...section('Successful').matchAll(/<Id>([^<]*)<\/Id>/g)].map((m) => m[1] as string);
}

/** A received message, as the JSON protocol returns it. */
export interface ReceivedByHand {
  Body: string;
  MD5OfBody: string;
  ReceiptHandle: string;
  MessageAttributes?: Record<string, { StringValue?: string }>;
}

/** SQS ReceiveMessage and DeleteMessageBatch by hand (the JSON protocol, as the SDK speaks it). */
export function createSqsByHand(emulator: Emulator) {
  const sqs = poster(emulator, 'sqs');
  const call = async (action: string, input: unknown) =>
    JSON.parse(
      await sqs.post(
        { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `AmazonSQS.${action}` },
        JSON.stringify(input),
      ),
    ) as Record<string, unknown>;
  return {
    /** The messages received, each body checked against its MD5 as the SDK does. */
    async receive(input: ReceiveMessageCommandInput): Promise<ReceivedByHand[]> {
      const messages = ((await call('ReceiveMessage', input)).Messages ?? []) as ReceivedByHand[];
      for (const m of messages) {
        if (createHash('md5').update(m.Body).digest('hex') !== m.MD5OfBody) throw new Error('MD5 mismatch');
      }
      return messages;
    },
    /** Deletes the messages of these receipt handles; throws if any entry failed. */
    async deleteBatch(queueUrl: string, receiptHandles: string[]): Promise<void> {
      const { Failed = [] } = (await call('DeleteMessageBatch', {
        QueueUrl: queueUrl,
        Entries: receiptHandles.map((handle, i) => ({ Id: String(i), ReceiptHandle: handle })),
      })) as { Failed?: unknown[] };
      if (Failed.length > 0) throw new Error(`delete failed: ${JSON.stringify(Failed)}`);
    },
    destroy: () => sqs.destroy(),
  };
}
