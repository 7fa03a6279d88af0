import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { createSnsPublisher } from '../../api/sns-publisher.ts';
import { type BatchOutcome, rejectionAttributes } from '../../consumer/batch-handler.ts';
import { acceptEvent } from '../../ingest/contract.ts';
import { toOutgoingMessage } from '../../ingest/message.ts';
import { createSnsClient } from '../../platform/aws.ts';
import {
  canonicalJson,
  eventText,
  type GeneratedEvent,
  generatedEvent,
  isCloudEventsString,
} from '../support/event-arbitraries.ts';
import { orderEvent, type Stack, startStack, testLog } from '../support/stack.ts';

/** Generated events per run (the issue asks for at least 10,000 per CI run). */
const runs = Number(process.env.ACCEPTANCE_RUNS ?? 10_000);
const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);

interface Sent {
  text: string;
  source: string;
  id: string;
  generated: GeneratedEvent;
  status?: number;
}

const member = (g: GeneratedEvent, name: string) => g.members.find(([n]) => n === name)?.[1];

/**
 * Percent-encodes as the HTTP binding says, and writes an unpaired surrogate as the three bytes
 * CESU-8 would give it: not UTF-8, which the API must refuse.
 */
function percentEncode(value: string): string {
  let out = '';
  for (const char of value) {
    const code = char.charCodeAt(0);
    if (char.length === 1 && code >= 0xd800 && code <= 0xdfff) {
      out += [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)]
        .map((b) => `%${b.toString(16).toUpperCase()}`)
        .join('');
    } else out += encodeURIComponent(char);
  }
  return out;
}

/**
 * Reasons an event must be refused, decided here without the contract's code: if the API accepts
 * one of these, the contract is too loose, whatever else the property finds.
 */
function mustRefuse(g: GeneratedEvent): string | undefined {
  const names = g.members.map(([n]) => n);
  if (new Set(names).size !== names.length) return 'a repeated name';
  if (member(g, 'specversion') !== '"1.0"') return 'specversion other than "1.0"';
  if (names.some((n) => !['data_base64'].includes(n) && !/^[a-z0-9]+$/.test(n))) return 'an invalid name';
  const source = JSON.parse(member(g, 'source') as string) as string;
  if (/[^A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]|%(?![0-9A-Fa-f]{2})/.test(source))
    return 'a source outside RFC 3986';
  const time = member(g, 'time');
  if (time !== undefined) {
    const m = /^"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(\.\d+)?([Zz]|[+-](\d\d):(\d\d))"$/.exec(time);
    if (!m) return 'a time that is not RFC 3339';
    const [, y, mo, d, h, mi, s, , , oh, om] = m.map(Number) as number[];
    if (y === 0 || mo! < 1 || mo! > 12 || d! < 1 || d! > 31 || h! > 23 || mi! > 59 || s! > 60)
      return 'a time off the calendar';
    if ((oh || 0) > 23 || (om || 0) > 59) return 'an offset beyond ±23:59';
    // The calendar, from Date itself: leap years repeat every 400 years.
    if (d! > new Date(Date.UTC(2000 + (y! % 400), mo!, 0)).getUTCDate()) return 'a day its month lacks';
    const sign = time.includes('+') ? -1 : 1;
    const utcMinute = (((h! * 60 + mi! + sign * ((oh || 0) * 60 + (om || 0))) % 1440) + 1440) % 1440;
    if (s === 60 && utcMinute !== 1439) return 'a leap second away from 23:59 UTC';
  }
  if (names.includes('data') && names.includes('data_base64')) return 'data and data_base64';
  for (const [name, value] of g.members) {
    if (name === 'data' || !value.startsWith('"')) continue;
    if (!isCloudEventsString(JSON.parse(value) as string))
      return `a control, surrogate or noncharacter in ${name}`;
  }
  return undefined;
}

describe('acceptance: a 202 is a promise', () => {
  let stack: Stack;
  let server: Server;
  let base: string;

  before(async () => {
    stack = await startStack({ security: { rateLimitPerMinute: 10_000_000, maxInFlightRequests: 10_000 } });
    server = createServer(stack.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => {
      server.close(resolve);
      server.closeAllConnections();
    });
    await stack.close();
  });

  const post = async (body: string, contentType: string) => {
    const res = await fetch(`${base}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': contentType },
      body,
    });
    return {
      status: res.status,
      body: (await res.json()) as { errors?: { path: string; message: string }[] },
    };
  };

  /** Sends events as batches (and some alone); a refused batch is sent again without what it names. */
  async function send(events: Sent[]): Promise<void> {
    const groups: Sent[][] = [];
    for (let i = 0; i < events.length; ) {
      const size = i % 7 === 0 ? 1 : 40;
      groups.push(events.slice(i, i + size));
      i += size;
    }
    let next = 0;
    const worker = async () => {
      while (next < groups.length) {
        let group = groups[next++] as Sent[];
        while (group.length > 0) {
          const single = group.length === 1;
          const { status, body } = single
            ? await post(group[0]?.text as string, 'application/cloudevents+json')
            : await post(`[${group.map((e) => e.text).join(',')}]`, 'application/cloudevents-batch+json');
          assert.ok(status < 500, `seed ${seed}: ${status} ${JSON.stringify(body).slice(0, 500)}`);
          if (status === 202) {
            for (const e of group) e.status = 202;
            break;
          }
          assert.ok(status === 400 || status === 413, `seed ${seed}: ${status} ${JSON.stringify(body)}`);
          const named = new Set(
            (body.errors ?? []).map((e) => {
              const index = single ? 0 : Number(/^\/body\/(\d+)/.exec(e.path)?.[1]);
              assert.ok(Number.isInteger(index), `seed ${seed}: a problem names no event: ${e.path}`);
              return index;
            }),
          );
          assert.ok(named.size > 0, `seed ${seed}: a ${status} names no event`);
          for (const i of named) (group[i] as Sent).status = status;
          group = group.filter((_, i) => !named.has(i));
        }
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
  }

  test(`when ${runs} generated events are posted, then each is refused with a 4xx or stored and read back as sent`, {
    timeout: 600_000,
  }, async (t) => {
    t.diagnostic(`fast-check seed ${seed} (FC_SEED=${seed} to repeat)`);
    const runId = crypto.randomUUID().slice(0, 8);
    const generated = fc.sample(generatedEvent, { numRuns: runs, seed });
    const events: Sent[] = generated.map((g, i) => {
      const id = `${runId}-${i}`;
      const source = (() => {
        try {
          return JSON.parse(member(g, 'source') as string) as string;
        } catch {
          return '';
        }
      })();
      return { text: eventText(g, id), source, id, generated: g };
    });
    await send(events);

    const accepted = events.filter((e) => e.status === 202);
    for (const e of accepted) {
      const reason = mustRefuse(e.generated);
      assert.equal(reason, undefined, `seed ${seed}: accepted despite ${reason}: ${e.text.slice(0, 300)}`);
    }
    assert.ok(
      accepted.length > runs * 0.3,
      `seed ${seed}: most events are valid, ${accepted.length} accepted`,
    );
    t.diagnostic(`${accepted.length} accepted, ${runs - accepted.length} refused with a 4xx`);

    await stack.handledMore(accepted.length);
    assert.deepEqual(
      await stack.queueDepth('dlq'),
      { visible: 0, inFlight: 0 },
      `seed ${seed}: nothing in the DLQ`,
    );

    let next = 0;
    const reader = async () => {
      while (next < accepted.length) {
        const e = accepted[next++] as Sent;
        const res = await fetch(
          `${base}/v1/events/${encodeURIComponent(e.source)}/${encodeURIComponent(e.id)}`,
        );
        const text = await res.text();
        assert.equal(res.status, 200, `seed ${seed}: ${e.text.slice(0, 200)} → ${res.status} ${text}`);
        assert.equal(canonicalJson(text), canonicalJson(e.text), `seed ${seed}: read back differs`);
        assert.equal(
          res.headers.get('ingesta-time-defaulted'),
          String(member(e.generated, 'time') === undefined),
          `seed ${seed}: time defaulted`,
        );
      }
    };
    await Promise.all(Array.from({ length: 8 }, reader));
  });

  /** Each of these was answered 202 and then lost before the contract; a time that exists is kept. */
  const formerlyLost = {
    dayOffCalendar: { time: '2025-02-30T10:00:00Z' },
    hour24: { time: '2025-05-01T24:00:00Z' },
    offset24: { time: '2025-05-01T10:00:00+24:00' },
    year0: { time: '0000-06-01T00:00:00Z' },
    afterYear9999: { time: '9999-12-31T23:30:00-01:00' },
    offsetWithoutMinutes: { time: '2026-01-01T00:00:00+01' },
    rawPercent: { source: '/shop/100%' },
    badEscape: { source: '/shop/%zz' },
    nonAscii: { source: '/shop/café' },
    braces: { source: '/shop/{id}' },
    backslash: { source: '/shop\\web' },
    pipe: { source: '/shop|web' },
    caret: { source: '/shop^web' },
    schemaWithSpace: { dataschema: 'https://shop.example/order schema' },
    schemaNonAscii: { dataschema: 'https://shop.example/é' },
    idSurrogate: { id: 'dup-\ud800' },
    typeSurrogate: { type: 'order.\udbff' },
    subjectNul: { subject: 'user-\u0000' },
    contentTypeSurrogate: { datacontenttype: 'application/\udc00json' },
  } satisfies Record<string, Record<string, string>>;

  test('when a batch mixes valid events with each kind formerly answered 202 and lost, then exactly those are refused, each named', async () => {
    const source = `/acceptance/${crypto.randomUUID()}`;
    const bad = Object.entries(formerlyLost).map(([name, overrides]) => ({
      name,
      event: orderEvent({ source, ...overrides }),
    }));
    const good = [
      orderEvent({ source, time: '2016-12-31T23:59:60Z' }),
      orderEvent({ source, time: '0001-01-01T00:00:00Z' }),
      orderEvent({ source, data: { big: 1 } }),
    ];
    const batch = [...good, ...bad.map((b) => b.event)];
    const refused = await stack.http
      .post('/v1/events')
      .set('content-type', 'application/cloudevents-batch+json')
      .send(JSON.stringify(batch))
      .expect(400);
    const named = new Set(
      (refused.body.errors as { path: string }[]).map((e) => Number(/^\/body\/(\d+)\//.exec(e.path)?.[1])),
    );
    assert.deepEqual(
      [...named].sort((a, b) => a - b),
      bad.map((_, i) => good.length + i),
      'every formerly lost kind is named, no valid event is',
    );
    for (const e of refused.body.errors as { path: string; message: string }[]) {
      assert.ok(
        e.message.length > 10 && !/must match/.test(e.message),
        `${e.path}: ${e.message} says what to fix`,
      );
    }

    await stack.http
      .post('/v1/events')
      .set('content-type', 'application/cloudevents-batch+json')
      .send(JSON.stringify(good))
      .expect(202);
    await stack.handledMore(good.length);
    const page = await stack.http.get('/v1/events').query({ source }).expect(200);
    assert.deepEqual(
      new Set(page.body.items.map((e: { id: string }) => e.id)),
      new Set(good.map((e) => e.id)),
    );
    const leap = page.body.metadata[page.body.items.findIndex((e: { id: string }) => e.id === good[0]?.id)];
    assert.equal(
      leap.time,
      '2016-12-31T23:59:59.999999Z',
      'a leap second is filed under the last microsecond of its minute',
    );
    assert.deepEqual(await stack.queueDepth('dlq'), { visible: 0, inFlight: 0 });
  });

  test('when the same bad rows reach the queue directly, then each goes to the DLQ alone with its reason and its batch-mates are stored', async () => {
    await stack.drain('dlq');
    const source = `/acceptance/${crypto.randomUUID()}`;
    const bad = Object.entries(formerlyLost).map(([name, overrides]) => ({
      name,
      event: orderEvent({ source: `${source}/${name}`, ...overrides }),
    }));
    const good = Array.from({ length: 10 }, (_, i) =>
      orderEvent({ source, time: i === 0 ? '2016-12-31T23:59:60Z' : undefined }),
    );
    // Interleaved, so a receive of ten holds good and bad together.
    const all = bad.flatMap((b, i) => [b.event, ...(good[i] ? [good[i]] : [])]);
    // Counted from now, by outcome: a message an earlier test left handled twice does not shorten the wait.
    const settled = new Promise<void>((resolve) => {
      let inserted = 0;
      let rejected = 0;
      const onOutcome = (outcome: BatchOutcome) => {
        rejected += outcome.rejected;
        if (outcome.kind === 'stored') inserted += outcome.inserted;
        if (inserted >= good.length && rejected >= bad.length) {
          stack.outcomes.off('outcome', onOutcome);
          resolve();
        }
      };
      stack.outcomes.on('outcome', onOutcome);
    });
    for (const event of all) {
      await stack.sendRaw(JSON.stringify(event), { type: 'order.created', source: '/x' });
    }
    await settled;

    const page = await stack.http.get('/v1/events').query({ source, limit: 100 }).expect(200);
    assert.deepEqual(
      new Set(page.body.items.map((e: { id: string }) => e.id)),
      new Set(good.map((e) => e.id)),
    );
    const letters = await stack.drain('dlq');
    assert.equal(letters.length, bad.length, 'each bad row, and only those, in the DLQ');
    for (const letter of letters) {
      const code = letter.MessageAttributes?.[rejectionAttributes.code]?.StringValue;
      const reason = letter.MessageAttributes?.[rejectionAttributes.reason]?.StringValue ?? '';
      assert.equal(code, 'SCHEMA_VIOLATION', letter.Body);
      assert.ok(reason.length > 20, `a reason: ${reason}`);
      assert.equal(
        Number(letter.Attributes?.ApproximateReceiveCount ?? 1),
        1,
        'moved by the consumer, not by SQS redrive',
      );
    }
    assert.deepEqual(await stack.queueDepth('main'), { visible: 0, inFlight: 0 });
  });

  test('when SNS cannot take one entry of a shared PublishBatch, then only its request fails, as refused', async () => {
    const publisher = createSnsPublisher({
      sns: createSnsClient(stack.config.aws),
      topicArn: stack.config.api.topicArn,
      log: testLog,
    });
    const good = toOutgoingMessage(acceptEvent(orderEvent()), Date.now());
    const poisoned = toOutgoingMessage(acceptEvent(orderEvent()), Date.now());
    // What the contract now refuses up front: an unpaired surrogate the SDK cannot encode.
    (poisoned.attributes.type as { StringValue: string }).StringValue = 'order.\ud800';
    const [a, b, c] = await Promise.allSettled([
      publisher.publish([good]),
      publisher.publish([poisoned]),
      publisher.publish([toOutgoingMessage(acceptEvent(orderEvent()), Date.now())]),
    ]);
    assert.equal(a.status, 'fulfilled');
    assert.equal(c.status, 'fulfilled');
    assert.equal(b.status, 'rejected');
    assert.equal(
      (b as PromiseRejectedResult).reason.refusedEntry,
      poisoned,
      'refused for its content, not an outage',
    );
    await stack.handledMore(2);
  });

  test('when generated events are posted in binary mode, then each is refused with a 4xx or stored and read back as its structured equal', {
    timeout: 300_000,
  }, async (t) => {
    const binarySeed = seed + 2;
    t.diagnostic(`fast-check seed ${binarySeed}`);
    const runId = crypto.randomUUID().slice(0, 8);
    const generated = fc.sample(generatedEvent, { numRuns: 500, seed: binarySeed });
    const accepted: {
      source: string;
      id: string;
      headers: Record<string, string>;
      body: string;
      contentType: string;
    }[] = [];
    for (const [i, g] of generated.entries()) {
      // The attributes as ce-* headers (strings, percent-encoded as the binding says), the data as the body.
      const headers: Record<string, string> = { 'ce-id': `${runId}-${i}` };
      let body = '';
      let contentType = 'application/json';
      for (const [name, valueText] of g.members) {
        const value = JSON.parse(valueText) as unknown;
        if (name === 'data') body = valueText;
        else if (name === 'datacontenttype')
          contentType = typeof value === 'string' && value ? value : contentType;
        // A name HTTP cannot carry as a header (é, a space) has no binary form: left out.
        else if (name !== 'data_base64' && value !== null && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
          headers[`ce-${name}`.toLowerCase()] = percentEncode(
            typeof value === 'string' ? value : JSON.stringify(value),
          );
        }
      }
      if (!/json/.test(contentType)) contentType = 'application/json';
      const res = await fetch(`${base}/v1/events`, {
        method: 'POST',
        headers: { ...headers, 'content-type': contentType },
        body,
      });
      const answer = await res.text();
      assert.ok(res.status < 500, `seed ${binarySeed}: ${res.status} ${answer.slice(0, 300)}`);
      if (res.status === 202) {
        accepted.push({
          source: decodeURIComponent(headers['ce-source'] ?? ''),
          id: headers['ce-id'] as string,
          headers,
          body,
          contentType,
        });
      } else
        assert.ok(res.status === 400 || res.status === 413, `seed ${binarySeed}: ${res.status} ${answer}`);
    }
    assert.ok(accepted.length > 50, `seed ${binarySeed}: ${accepted.length} accepted`);
    await stack.handledMore(accepted.length);
    for (const e of accepted) {
      const res = await fetch(
        `${base}/v1/events/${encodeURIComponent(e.source)}/${encodeURIComponent(e.id)}`,
      );
      const stored = (await res.json()) as Record<string, unknown>;
      assert.equal(res.status, 200, `seed ${binarySeed}: ${JSON.stringify(stored)}`);
      for (const [name, value] of Object.entries(e.headers)) {
        assert.equal(stored[name.slice(3)], decodeURIComponent(value), `seed ${binarySeed}: ${name}`);
      }
      assert.equal(stored.datacontenttype, e.contentType);
      if (e.body)
        assert.equal(
          canonicalJson(JSON.stringify(stored.data)),
          canonicalJson(JSON.stringify(JSON.parse(e.body))),
        );
    }
    assert.deepEqual(
      await stack.queueDepth('dlq'),
      { visible: 0, inFlight: 0 },
      `seed ${binarySeed}: nothing in the DLQ`,
    );
  });

  test('when query parameters are generated, then /v1/events and /v1/stats never answer 5xx', async (t) => {
    const querySeed = seed + 1;
    t.diagnostic(`fast-check seed ${querySeed}`);
    const time = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.constantFrom(
        '2025-02-30T00:00:00Z',
        '2025-13-01T00:00:00Z',
        '0000-01-01T00:00:00Z',
        '9999-12-31T23:59:60Z',
        '2026-01-01T00:00:00 01:00',
        '2016-12-31T23:59:60Z',
        '2026-11-28T00:00:00+23:59',
      ),
    );
    const cursor = fc.oneof(
      fc.string({ maxLength: 20 }),
      fc
        .tuple(
          fc.oneof(time, fc.constant('Tue, 1 Dec 2026')),
          fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 70n }).map(String), fc.string()),
        )
        .map((pair) => Buffer.from(JSON.stringify(pair)).toString('base64url')),
    );
    const params = fc.record(
      {
        from: time,
        to: time,
        cursor,
        limit: fc.oneof(fc.integer({ min: -5, max: 2000 }).map(String), fc.string({ maxLength: 5 })),
        bucket: fc.constantFrom('minute', 'hour', 'day', 'week', ''),
        type: fc.string({ maxLength: 10 }),
        source: fc.string({ maxLength: 10 }),
        subject: fc.string({ maxLength: 10 }),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/v1/events', '/v1/stats'),
        params,
        fc.boolean(),
        async (path, query, repeat) => {
          const search = new URLSearchParams(query as Record<string, string>);
          if (repeat && query.limit) search.append('limit', query.limit);
          const res = await fetch(`${base}${path}?${search}`);
          const text = await res.text();
          assert.ok(res.status < 500, `${path}?${search} → ${res.status} ${text.slice(0, 300)}`);
        },
      ),
      { numRuns: 2_000, seed: querySeed },
    );
  });

  test('when from is after to, then /v1/events and /v1/stats give the same answer', async () => {
    const query = { from: '2026-02-01T00:00:00Z', to: '2026-01-01T00:00:00Z' };
    const events = await stack.http.get('/v1/events').query(query).expect(400);
    const stats = await stack.http
      .get('/v1/stats')
      .query({ ...query, bucket: 'day' })
      .expect(400);
    assert.deepEqual(events.body.errors, stats.body.errors);
    assert.equal(events.body.detail, stats.body.detail);
    const impossible = await stack.http
      .get('/v1/stats')
      .query({ ...query, bucket: 'day', from: '2025-02-30T00:00:00Z' })
      .expect(400);
    assert.match(impossible.body.detail, /from. day 30 does not exist in February 2025/);
    assert.doesNotMatch(
      impossible.body.detail,
      /before/,
      'an impossible day is not reported as an order problem',
    );
  });
});
