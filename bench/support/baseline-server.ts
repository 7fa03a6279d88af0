/**
 * The baseline for the ingest benchmarks: a bare Express 5 route that only parses JSON and answers
 * 202. With `--publish` it also does the one thing a correct ingest API cannot skip: publish each
 * event to the topic with its attributes (one Publish, or PublishBatch calls of 10 for a batch)
 * before answering.
 * Prints one JSON line with its port once listening.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { PublishBatchCommand, PublishCommand } from '@aws-sdk/client-sns';
import express from 'express';
import type { CloudEvent } from '../../ingest/contract.ts';
import { toOutgoingMessage } from '../../ingest/message.ts';
import { createSnsClient } from '../../platform/aws.ts';

const { values } = parseArgs({
  options: {
    publish: { type: 'boolean', default: false },
    endpoint: { type: 'string' },
    topic: { type: 'string' },
  },
});
const sns = values.publish
  ? createSnsClient({ region: 'us-east-1', endpointUrl: values.endpoint })
  : undefined;

const app = express();
app.post(
  '/v1/events',
  express.json({
    type: ['application/json', 'application/cloudevents+json', 'application/cloudevents-batch+json'],
    limit: 5 * 1024 * 1024,
  }),
  async (req, res) => {
    const events = (Array.isArray(req.body) ? req.body : [req.body]) as { source: string; id: string }[];
    if (sns) {
      // The same message the API sends (body and attributes): the emulator's cost per message is
      // then the same on both sides of the comparison.
      const acceptedAtMs = Date.now();
      const messages = events.map((e) =>
        toOutgoingMessage(
          { text: JSON.stringify(e), type: (e as CloudEvent).type, source: e.source },
          acceptedAtMs,
        ),
      );
      if (messages.length === 1) {
        await sns.send(
          new PublishCommand({
            TopicArn: values.topic,
            Message: messages[0]?.body,
            MessageAttributes: messages[0]?.attributes,
          }),
        );
      } else {
        const calls = [];
        for (let i = 0; i < messages.length; i += 10) {
          calls.push(
            sns.send(
              new PublishBatchCommand({
                TopicArn: values.topic,
                PublishBatchRequestEntries: messages.slice(i, i + 10).map((m, j) => ({
                  Id: String(j),
                  Message: m.body,
                  MessageAttributes: m.attributes,
                })),
              }),
            ),
          );
        }
        await Promise.all(calls);
      }
    }
    res.status(202).json({ accepted: events.map(({ source, id }) => ({ source, id })) });
  },
);
const server = createServer(app);
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ msg: 'baseline listening', port })}\n`);
});
process.once('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
