import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { createDatabase, type Database } from '../../db/database.ts';
import { EventRepository } from '../../db/event-repository.ts';
import { runReplayCli } from '../../replay/cli.ts';
import { ReplayStore } from '../../replay/store.ts';
import { replayAttributes } from '../../replay/worker.ts';
import { newEvent } from '../support/events.ts';
import { spawnEntry } from '../support/processes.ts';
import { type Backends, orderEvent, type Stack, startBackends, startStack } from '../support/stack.ts';

interface Received {
  id: string;
  replayId: string;
  position: number;
  sentAtMs: number;
  text: string;
}

/** Receives (long polls, then deletes) until `count` messages came, or `idleSec` passes with none. */
async function receive(sqs: SQSClient, queueUrl: string, count: number, idleSec = 10): Promise<Received[]> {
  const out: Received[] = [];
  while (out.length < count) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: Math.min(idleSec, 20),
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['SentTimestamp'],
      }),
    );
    if (Messages.length === 0) break;
    for (const m of Messages as Message[]) {
      const text = m.Body ?? '';
      out.push({
        id: (JSON.parse(text) as { id: string }).id,
        replayId: m.MessageAttributes?.[replayAttributes.replayId]?.StringValue ?? '',
        position: Number(m.MessageAttributes?.[replayAttributes.position]?.StringValue),
        sentAtMs: Number(m.Attributes?.SentTimestamp),
        text,
      });
    }
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
      }),
    );
  }
  return out;
}

/** Stores `count` events straight through the repository, as the consumer would, in batches. */
async function storeEvents(
  repository: EventRepository,
  count: number,
  make: (i: number) => Parameters<typeof newEvent>[0],
) {
  for (let i = 0; i < count; i += 100) {
    await repository.insertBatch(
      Array.from({ length: Math.min(100, count - i) }, (_, j) => newEvent(make(i + j))),
    );
  }
}

/** Ids of the stored events a filter on type matches, in the store's order. */
async function storedInOrder(db: Database, type: string): Promise<string[]> {
  const { rows } = await db.raw<{ rows: { id: string }[] }>(
    'select id from events where type = ? order by tx, seq',
    [type],
  );
  return rows.map((r) => r.id);
}

describe('replays', () => {
  let stack: Stack;
  let sqs: SQSClient;
  before(async () => {
    stack = await startStack({
      replayQueues: ['replay-all', 'replay-follow', 'replay-rate', 'replay-cesql'],
    });
    sqs = stack.sqs;
  });
  after(() => stack.close());

  const create = (body: Record<string, unknown>) =>
    stack.http.post('/v1/replays').set('content-type', 'application/json').send(body);

  test('when 10,000 stored events are replayed, then each matching one reaches the target once, in storage order, and the dry run counted them', async () => {
    const runId = crypto.randomUUID().slice(0, 8);
    await storeEvents(stack.repository, 12_000, (i) =>
      orderEvent({
        id: `${runId}-${i}`,
        type: i % 6 === 5 ? 'replay.other' : 'replay.all',
        time: `2026-0${1 + (i % 3)}-0${1 + (i % 9)}T10:00:00Z`,
      }),
    );
    const target = stack.replayTargets[0] as string;
    const dry = await create({
      filter: { type: 'replay.all' },
      target,
      ratePerSec: 10_000,
      dryRun: true,
    }).expect(200);
    assert.equal(dry.body.eventsMatched, 10_000);
    const made = await create({ filter: { type: 'replay.all' }, target, ratePerSec: 10_000 }).expect(201);
    assert.match(made.headers.location ?? '', /^\/v1\/replays\/[0-9a-f-]{36}$/);

    const received = await receive(sqs, target, 10_000);
    assert.equal(received.length, dry.body.eventsMatched, 'the dry run counted what the replay sends');
    const seen = new Map<string, number[]>();
    for (const r of received) seen.set(r.id, [...(seen.get(r.id) ?? []), r.position]);
    const twice = [...seen].filter(([, p]) => p.length > 1);
    assert.equal(
      new Set(received.map((r) => r.id)).size,
      10_000,
      `no event twice: ${JSON.stringify(twice.slice(0, 5))}`,
    );
    const byPosition = [...received].sort((a, b) => a.position - b.position);
    assert.deepEqual(
      byPosition.map((r) => r.id),
      await storedInOrder(stack.db, 'replay.all'),
      'positions 1..N follow the store order',
    );
    assert.ok(
      received.every((r) => r.replayId === made.body.id && JSON.parse(r.text).replayid === made.body.id),
    );
    // The event as sent, plus replayid and nothing else.
    const first = JSON.parse(byPosition[0]?.text ?? '{}') as Record<string, unknown>;
    const { replayid: _replayid, ...original } = first;
    assert.deepEqual(
      original,
      JSON.parse((await stack.repository.get('/shop/web', first.id as string))?.text ?? ''),
    );
    assert.equal((await receive(sqs, target, 1, 1)).length, 0, 'nothing more');

    const done = await stack.http.get(`/v1/replays/${made.body.id}`).expect(200);
    assert.equal(done.body.state, 'done');
    assert.equal(done.body.eventsSent, 10_000);
  });

  test('when a replay follows while producers keep posting, then the target gets every matching event once, with no gap at the hand-over', async () => {
    const runId = crypto.randomUUID().slice(0, 8);
    await storeEvents(stack.repository, 2_000, (i) =>
      orderEvent({ id: `${runId}-old-${i}`, type: 'replay.follow' }),
    );
    const target = stack.replayTargets[1] as string;
    const made = await create({
      filter: { type: 'replay.follow' },
      target,
      ratePerSec: 2_000,
      follow: true,
    }).expect(201);
    // Producers post through the API while the backfill runs and after it caught up.
    let posted = 0;
    for (let round = 0; round < 30; round++) {
      const batch = Array.from({ length: 20 }, (_, i) =>
        orderEvent({ id: `${runId}-new-${round}-${i}`, type: 'replay.follow' }),
      );
      await stack.http
        .post('/v1/events')
        .set('content-type', 'application/cloudevents-batch+json')
        .send(JSON.stringify(batch))
        .expect(202);
      posted += batch.length;
    }
    await stack.handledMore(posted);
    const stored = await storedInOrder(stack.db, 'replay.follow');
    assert.equal(stored.length, 2_000 + posted);
    const received = await receive(sqs, target, stored.length);
    assert.equal(new Set(received.map((r) => r.id)).size, received.length, 'no event twice');
    assert.deepEqual(new Set(received.map((r) => r.id)), new Set(stored), 'every matching event, none else');
    assert.deepEqual(
      [...received].sort((a, b) => a.position - b.position).map((r) => r.id),
      stored,
      'in the store order, across the hand-over',
    );
    const state = (await stack.http.get(`/v1/replays/${made.body.id}`).expect(200)).body.state;
    assert.ok(['running', 'following'].includes(state), `a following replay does not end: ${state}`);
    const cancelled = await stack.http.delete(`/v1/replays/${made.body.id}`).expect(200);
    assert.equal(cancelled.body.state, 'cancelled');
  });

  test('when a filter has a CESQL expression, then the dry run and the replay agree on what matches', async () => {
    const runId = crypto.randomUUID().slice(0, 8);
    await storeEvents(stack.repository, 300, (i) =>
      orderEvent({
        id: `${runId}-${i}`,
        type: 'replay.cesql',
        subject: `user-${i % 30}`,
        ...(i % 4 === 0 ? { channel: 'web' } : {}),
      }),
    );
    const target = stack.replayTargets[3] as string;
    const filter = {
      type: 'replay.cesql',
      cesql: "subject LIKE 'user-1%' AND (channel = 'web' OR NOT EXISTS channel)",
    };
    const dry = await create({ filter, target, ratePerSec: 5_000, dryRun: true }).expect(200);
    await create({ filter, target, ratePerSec: 5_000 }).expect(201);
    const received = await receive(sqs, target, dry.body.eventsMatched);
    // A missing attribute is an error that makes the whole expression false (replay/cesql.ts), so
    // only the events with channel = 'web' match, not those without a channel.
    const expected = Array.from({ length: 300 }, (_, i) => i).filter(
      (i) => String(i % 30).startsWith('1') && i % 4 === 0,
    ).length;
    assert.equal(dry.body.eventsMatched, expected);
    assert.equal(received.length, expected);
    assert.equal((await receive(sqs, target, 1, 1)).length, 0, 'nothing more');
    const bad = await create({ filter: { cesql: 'subject LIKE' }, target }).expect(400);
    assert.equal(bad.body.errors[0].path, '/body/filter/cesql');
  });

  test('when an operator runs npm run replay, then a dry run counts, create starts, watch ends with the replay and cancel stops one', async () => {
    const server = createServer(stack.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const lines: string[] = [];
    const output = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(`ERR ${l}`) };
    try {
      const runId = crypto.randomUUID().slice(0, 8);
      await storeEvents(stack.repository, 40, (i) => orderEvent({ id: `${runId}-${i}`, type: 'replay.cli' }));
      const target = stack.replayTargets[3] as string;
      const args = ['--api', api, '--target', target, '--type', 'replay.cli', '--rate', '1000'];
      assert.equal(await runReplayCli(['create', ...args, '--dry-run'], output), 0);
      assert.match(lines.at(-1) ?? '', /^40 event\(s\) match; about 1 s at the rate$/);
      assert.equal(await runReplayCli(['create', ...args], output), 0);
      const id = /^replay ([0-9a-f-]{36}) started/.exec(lines.at(-1) ?? '')?.[1] as string;
      assert.equal(await runReplayCli(['watch', id, '--api', api], output), 0);
      assert.match(lines.at(-1) ?? '', /^\[#{30}\] 100% 40\/40 done$/);
      assert.equal((await receive(sqs, target, 40)).length, 40);
      assert.equal(await runReplayCli(['create', ...args, '--follow'], output), 0);
      const following = /^replay ([0-9a-f-]{36}) started/.exec(lines.at(-1) ?? '')?.[1] as string;
      assert.equal(await runReplayCli(['cancel', following, '--api', api], output), 0);
      assert.match(lines.at(-1) ?? '', / cancelled after \d+ event\(s\)$/);
      await receive(sqs, target, 40, 1);
      assert.equal(await runReplayCli(['nonsense'], output), 2);
    } finally {
      await new Promise((resolve) => {
        server.close(resolve);
        server.closeAllConnections();
      });
    }
  });

  test('when a target is not on the allow-list or a rate is over the cap, then the replay is refused', async () => {
    const refused = await create({ target: 'https://sqs.eu-west-1.amazonaws.com/1/elsewhere' }).expect(403);
    assert.match(refused.body.errors[0].message, /not one of the allowed targets/);
    await create({ target: stack.replayTargets[0], ratePerSec: 10_001 }).expect(400);
    await create({ target: stack.replayTargets[0], filter: { from: '2025-02-30T00:00:00Z' } }).expect(400);
  });

  test('when a replay is capped at 50 events/s, then 1,500 events take about 30 s', {
    timeout: 120_000,
  }, async () => {
    const runId = crypto.randomUUID().slice(0, 8);
    await storeEvents(stack.repository, 1_500, (i) =>
      orderEvent({ id: `${runId}-${i}`, type: 'replay.rate' }),
    );
    const target = stack.replayTargets[2] as string;
    await create({ filter: { type: 'replay.rate' }, target, ratePerSec: 50 }).expect(201);
    const received = await receive(sqs, target, 1_500, 20);
    assert.equal(received.length, 1_500);
    const sentAt = received.map((r) => r.sentAtMs).sort((a, b) => a - b);
    const seconds = ((sentAt.at(-1) as number) - (sentAt[0] as number)) / 1000;
    // 1,500 events at 50/s: the last call starts 29.8 s after the first; a burst of 1 s is allowed.
    assert.ok(
      seconds >= 29.8 * 0.9 - 1 && seconds <= 29.8 * 1.1,
      `${seconds.toFixed(1)} s for 1,500 events at 50/s`,
    );
  });
});

describe('replays across a consumer killed mid-replay', () => {
  let backends: Backends;
  let db: Database;
  let sqs: SQSClient;
  before(async () => {
    backends = await startBackends();
    db = createDatabase({
      url: backends.database.url,
      poolMax: 2,
      statementTimeoutMs: 10_000,
      applicationName: 'test',
    });
    sqs = new SQSClient({
      endpoint: backends.messaging.endpoint,
      region: backends.messaging.region,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
  });
  after(async () => {
    sqs?.destroy();
    await db?.destroy();
    await backends?.stop();
  });

  test('when the pod sending a replay is killed, then another resumes from its last recorded position: each event arrives, repeats at most one step', {
    timeout: 120_000,
  }, async () => {
    const { QueueUrl: target } = await sqs.send(new CreateQueueCommand({ QueueName: 'replay-resume' }));
    const total = 2_000;
    await storeEvents(new EventRepository(db), total, (i) =>
      orderEvent({ id: `resume-${i}`, type: 'replay.resume' }),
    );
    const store = new ReplayStore(db);
    const replay = await store.create({
      filter: { type: 'replay.resume' },
      target: target as string,
      ratePerSec: 200,
      follow: false,
      eventsMatched: total,
    });
    const env = { ...backends.env, REPLAY_TARGETS: target as string, REPLAY_LEASE_SEC: '2' };

    const first = spawnEntry('consumer', env);
    const early = await receive(sqs, target as string, 400);
    assert.equal(await first.stop('SIGKILL'), null, 'killed, lease not let go');
    const second = spawnEntry('consumer', env);
    try {
      const rest = await receive(sqs, target as string, total * 2, 5);
      const all = [...early, ...rest];
      const ids = new Set(all.map((r) => r.id));
      assert.equal(ids.size, total, 'every event arrived');
      // At 200 events/s a step is 2 calls of 10: what a killed pod sent but had not recorded.
      assert.ok(all.length - total <= 20, `repeats: ${all.length - total}, at most one step of 20`);
      // A repeat carries the same position: a target drops it by (replay id, position).
      assert.equal(new Set(all.map((r) => r.position)).size, total);
      const done = await store.get(replay.id);
      assert.equal(done?.state, 'done');
      assert.equal(done?.eventsSent, total, 'each recorded position counted once');
    } finally {
      assert.equal(await second.stop(), 0);
    }
  });
});
