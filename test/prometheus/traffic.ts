import assert from 'node:assert/strict';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { LocalMessaging } from '../../local/emulator.ts';
import { orderEvent } from '../support/stack.ts';

/** What one round of traffic did, so the test can tell which labels and counts to expect. */
export interface RoundResult {
  /** `source` and `id` of every distinct event accepted (202). */
  accepted: { source: string; id: string }[];
  /** Every `source` and `id` the round put into a URL or body. */
  identifiers: string[];
}

async function send(
  url: string,
  init: { method?: string; contentType?: string; body?: unknown },
  expected: number[],
): Promise<number> {
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    headers: init.contentType ? { 'content-type': init.contentType } : {},
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  await res.arrayBuffer();
  assert.ok(
    expected.includes(res.status),
    `${init.method ?? 'GET'} ${url} answered ${res.status}, expected ${expected.join(' or ')}`,
  );
  return res.status;
}

function eventPath(source: string, id: string): string {
  return `/v1/events/${encodeURIComponent(source)}/${encodeURIComponent(id)}`;
}

/**
 * One round of the requests every API panel shows: a single and a batch POST, a duplicate, a 400 on each
 * method, a list, a read of an earlier event (200 once stored), a read of a missing one (404), stats and
 * an unknown path.
 */
export async function sendRound(apiUrl: string, earlier: { source: string; id: string } | undefined) {
  const single = orderEvent();
  const batch = Array.from({ length: 5 }, () => orderEvent({ subject: `user-${crypto.randomUUID()}` }));
  const missingId = `missing-${crypto.randomUUID()}`;
  const now = Date.now();
  const events = `${apiUrl}/v1/events`;

  await send(events, { method: 'POST', contentType: 'application/cloudevents+json', body: single }, [202]);
  await send(
    events,
    { method: 'POST', contentType: 'application/cloudevents-batch+json', body: batch },
    [202],
  );
  await send(events, { method: 'POST', contentType: 'application/json', body: single }, [202]);
  await send(
    events,
    { method: 'POST', contentType: 'application/cloudevents+json', body: { ...single, type: undefined } },
    [400],
  );
  await send(`${events}?type=order.created&subject=user-42&limit=10`, {}, [200]);
  await send(`${events}?limit=0`, {}, [400]);
  if (earlier) await send(`${apiUrl}${eventPath(earlier.source, earlier.id)}`, {}, [200, 404]);
  await send(`${apiUrl}${eventPath(single.source, missingId)}`, {}, [404]);
  const stats = new URLSearchParams({
    from: new Date(now - 3_600_000).toISOString(),
    to: new Date(now + 60_000).toISOString(),
    bucket: 'minute',
  });
  await send(`${apiUrl}/v1/stats?${stats}`, {}, [200]);
  await send(`${apiUrl}/v1/no-such-route/${missingId}`, {}, [404]);

  const accepted = [single, ...batch].map(({ source, id }) => ({ source, id }));
  return {
    accepted,
    identifiers: [...accepted.flatMap(({ source, id }) => [source, id]), missingId],
  } satisfies RoundResult;
}

/** Puts a message no consumer can ever parse straight onto the main queue: it must end in the DLQ. */
export async function sendPoisonMessage(messaging: LocalMessaging): Promise<void> {
  const sqs = new SQSClient({
    endpoint: messaging.endpoint,
    region: messaging.region,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  try {
    await sqs.send(
      new SendMessageCommand({ QueueUrl: messaging.queueUrl, MessageBody: '{"not": "an event"' }),
    );
  } finally {
    sqs.destroy();
  }
}
