import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { CloudEvent, emitterFor, HTTP, httpTransport, Mode } from 'cloudevents';
import { canonicalJson } from '../support/event-arbitraries.ts';
import { type Stack, startStack } from '../support/stack.ts';

/**
 * The official CloudEvents JavaScript SDK as the producer and as the reader: what it sends in any
 * mode is stored, and what ingesta answers parses back, with `HTTP.toEvent`, to the event it sent.
 */

type Attributes = Record<string, unknown>;

/** An SDK event as plain attributes, bytes as arrays (the SDK reads data_base64 back as a Uint32Array). */
function comparable(event: CloudEvent<unknown>): Attributes {
  const out: Attributes = {};
  for (const [name, value] of Object.entries(event.toJSON())) {
    if (value === undefined) continue;
    out[name] = ArrayBuffer.isView(value) ? Array.from(value as Uint8Array) : value;
  }
  if (out.data_base64 !== undefined && out.data === undefined) {
    out.data = Array.from(Buffer.from(out.data_base64 as string, 'base64'));
  }
  delete out.data_base64;
  return out;
}

/** The spec's own examples (cloudevents/spec json-format.md §3.2 and §4.3, http-protocol-binding.md §3.1.4), filled in where they elide. */
const specExamples = JSON.parse(
  readFileSync(new URL('../fixtures/cloudevents-spec-examples.json', import.meta.url), 'utf8'),
) as { name: string; source: string; contentType: string; headers?: Record<string, string>; body: string }[];

describe('the official CloudEvents SDK as producer and reader', () => {
  let stack: Stack;
  let server: Server;
  let url: string;
  let runId: string;

  before(async () => {
    stack = await startStack();
    server = createServer(stack.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    runId = crypto.randomUUID().slice(0, 8);
  });
  after(async () => {
    await new Promise((resolve) => {
      server.close(resolve);
      server.closeAllConnections();
    });
    await stack.close();
  });

  const base = (id: string, more: Attributes = {}) =>
    new CloudEvent({
      specversion: '1.0',
      id: `${runId}-${id}`,
      source: '/shop/web',
      type: 'order.created',
      subject: 'user-42',
      ...more,
    });

  /** Reads an event back in structured mode (default) and in binary mode (Accept: its datacontenttype). */
  async function readBack(event: CloudEvent<unknown>) {
    const path = `${url}/v1/events/${encodeURIComponent(event.source)}/${encodeURIComponent(event.id)}`;
    const structured = await fetch(path);
    assert.equal(structured.status, 200);
    assert.match(structured.headers.get('content-type') ?? '', /^application\/cloudevents\+json/);
    const fromStructured = HTTP.toEvent({
      headers: Object.fromEntries(structured.headers),
      body: await structured.text(),
    }) as CloudEvent<unknown>;
    const binary = await fetch(`${path}?mode=binary`);
    assert.equal(binary.status, 200);
    // Header values come percent-encoded, as the binding requires (§3.1.3.2). The SDK's HTTP.toEvent
    // does not decode them (nor do sdk-go and sdk-java: cloudevents/spec#1397), so the test decodes
    // once, as a conforming receiver does, before handing the headers to it.
    const headers = Object.fromEntries(
      [...binary.headers].map(([name, value]) => [
        name,
        name.startsWith('ce-') ? decodeURIComponent(value) : value,
      ]),
    );
    for (const [name, value] of binary.headers) {
      if (name.startsWith('ce-'))
        assert.match(value, /^(?:[\x21\x23\x24\x26-\x7E]|%[0-9A-F]{2})*$/, `${name} is percent-encoded`);
    }
    const body = Buffer.from(await binary.arrayBuffer());
    const contentType = binary.headers.get('content-type') ?? '';
    const fromBinary = HTTP.toEvent({
      headers,
      body: /json/.test(contentType)
        ? body.toString('utf8')
        : /^text\/|xml/.test(contentType)
          ? body.toString('utf8')
          : body,
    }) as CloudEvent<unknown>;
    return { fromStructured, fromBinary };
  }

  const cases: { name: string; event: CloudEvent<unknown>; binaryExtensionsAsStrings?: boolean }[] = [];
  before(() => {
    cases.push(
      {
        name: 'JSON data',
        event: base('json', {
          datacontenttype: 'application/json',
          data: { productId: 'p-7', quantity: 2, tags: ['a', 'é'] },
        }),
      },
      {
        name: 'text data',
        event: base('text', { datacontenttype: 'text/plain', data: 'two lines\nand ünïcödé 😀' }),
      },
      {
        name: 'XML data',
        event: base('xml', {
          datacontenttype: 'application/xml',
          data: '<order id="1001"><qty>2</qty></order>',
        }),
      },
      {
        name: 'bytes',
        event: base('bytes', {
          datacontenttype: 'application/octet-stream',
          data: new Uint8Array([0, 1, 2, 127, 128, 254, 255]),
        }),
      },
      {
        name: 'extensions of every type and unicode',
        event: base('ext', {
          datacontenttype: 'application/json',
          data: { ok: true },
          traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
          count: 42,
          flag: true,
          note: 'x y "z" 100%',
        }),
        binaryExtensionsAsStrings: true,
      },
    );
  });

  for (const mode of [Mode.BINARY, Mode.STRUCTURED]) {
    test(`when the SDK's emitter sends in ${mode} mode, then every kind of data is stored and reads back as sent in both modes`, async () => {
      const emit = emitterFor(httpTransport(`${url}/v1/events`), { mode });
      const sent = cases.map((c) => ({ ...c, event: c.event.cloneWith({ id: `${c.event.id}-${mode}` }) }));
      for (const { name, event } of sent) {
        // The SDK's transport resolves with the body and headers only, whatever the status.
        const response = (await emit(event)) as unknown as { body: string };
        assert.match(response.body, /^\{"accepted":\[/, `${name}: ${response.body}`);
      }
      await stack.handledMore(sent.length);
      for (const { name, event, binaryExtensionsAsStrings } of sent) {
        const { fromStructured, fromBinary } = await readBack(event);
        // Binary mode carries every attribute as a header string: an integer or boolean extension
        // sent in binary mode is a string from then on (HTTP binding §3.1.3.2).
        const expected = comparable(
          mode === Mode.BINARY && binaryExtensionsAsStrings
            ? event.cloneWith({ count: '42', flag: 'true' })
            : event,
        );
        assert.deepEqual(comparable(fromStructured), expected, `${name}: structured read-back`);
        assert.deepEqual(
          comparable(fromBinary),
          { ...expected, ...(typeof expected.count === 'number' ? { count: '42', flag: 'true' } : {}) },
          `${name}: binary read-back`,
        );
      }
    });
  }

  test('when HTTP.binary and HTTP.structured messages are posted as they are, then both are stored', async () => {
    const events = [base('msg-binary', { data: { n: 1 } }), base('msg-structured', { data: { n: 2 } })];
    const messages = [
      HTTP.binary(events[0] as CloudEvent<unknown>),
      HTTP.structured(events[1] as CloudEvent<unknown>),
    ];
    for (const message of messages) {
      const res = await fetch(`${url}/v1/events`, {
        method: 'POST',
        headers: Object.fromEntries(Object.entries(message.headers).map(([k, v]) => [k, String(v)])),
        body: message.body as string,
      });
      assert.equal(res.status, 202, await res.text());
    }
    await stack.handledMore(2);
    // Binary mode always carries a Content-Type: the SDK sends its default for an event without one.
    const onTheWire = [
      events[0]?.cloneWith({ datacontenttype: 'application/json; charset=utf-8' }),
      events[1],
    ];
    for (const [i, event] of events.entries()) {
      const expected = comparable(onTheWire[i] as CloudEvent<unknown>);
      assert.deepEqual(comparable((await readBack(event)).fromStructured), expected);
    }
  });

  test('when a batch of SDK events is posted as cloudevents-batch+json, then each reads back as sent', async () => {
    const events = Array.from({ length: 5 }, (_, i) => base(`batch-${i}`, { data: { i }, seq: i }));
    const res = await fetch(`${url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents-batch+json' },
      body: JSON.stringify(events),
    });
    assert.equal(res.status, 202, await res.text());
    await stack.handledMore(events.length);
    for (const event of events)
      assert.deepEqual(comparable((await readBack(event)).fromStructured), comparable(event));
  });

  test('when a binary-mode body looks like an event, then the event in the headers is stored, the body is its data', async () => {
    const id = `${runId}-hdr-1`;
    const body = JSON.stringify({
      specversion: '1.0',
      id: `${runId}-body-1`,
      source: '/shop/web',
      type: 'order.created',
    });
    const res = await fetch(`${url}/v1/events`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'ce-specversion': '1.0',
        'ce-id': id,
        'ce-source': '/shop/web',
        'ce-type': 'order.created',
      },
      body,
    });
    assert.equal(res.status, 202);
    await stack.handledMore(1);
    const stored = await fetch(`${url}/v1/events/%2Fshop%2Fweb/${id}`);
    assert.deepEqual(await stored.json(), {
      specversion: '1.0',
      id,
      source: '/shop/web',
      type: 'order.created',
      datacontenttype: 'application/json',
      data: JSON.parse(body),
    });
    assert.equal((await fetch(`${url}/v1/events/%2Fshop%2Fweb/${runId}-body-1`)).status, 404);
  });

  test('when ce-* headers arrive with a structured content type, then 400 says which mode was detected and why', async () => {
    const res = await fetch(`${url}/v1/events`, {
      method: 'POST',
      headers: {
        'content-type': 'application/cloudevents+json',
        'ce-specversion': '1.0',
        'ce-id': 'x',
        'ce-source': '/s',
        'ce-type': 't',
      },
      body: JSON.stringify({ specversion: '1.0', id: 'y', source: '/s', type: 't' }),
    });
    assert.equal(res.status, 400);
    const problem = (await res.json()) as { errors: { path: string; message: string }[] };
    assert.match(problem.errors[0]?.message ?? '', /binary-mode/);
    assert.match(problem.errors[0]?.message ?? '', /structured content type/);
  });

  test('when header values are percent-encoded or quoted, then they are decoded once; invalid UTF-8 is refused', async () => {
    const id = `${runId}-enc`;
    const res = await fetch(`${url}/v1/events`, {
      method: 'POST',
      headers: {
        'content-type': 'text/plain',
        'ce-specversion': '1.0',
        'ce-id': id,
        'ce-source': '/shop/web',
        'ce-type': 'order.created',
        'ce-subject': 'Euro%20%E2%82%AC%20%F0%9F%98%80',
        'ce-note': '"quoted \\"value\\" 100%25"',
      },
      body: 'hello',
    });
    assert.equal(res.status, 202, await res.text());
    await stack.handledMore(1);
    const stored = (await (await fetch(`${url}/v1/events/%2Fshop%2Fweb/${id}`)).json()) as Attributes;
    assert.equal(stored.subject, 'Euro € 😀');
    assert.equal(stored.note, 'quoted "value" 100%');
    const overlong = await fetch(`${url}/v1/events`, {
      method: 'POST',
      headers: {
        'content-type': 'text/plain',
        'ce-specversion': '1.0',
        'ce-id': `${id}-2`,
        'ce-source': '/s',
        'ce-type': 't',
        'ce-subject': '%C0%A0',
      },
      body: 'x',
    });
    assert.equal(overlong.status, 400);
    assert.match(JSON.stringify(await overlong.json()), /ce-subject/);
  });

  test('when an extension name is longer than 20 characters, then it is accepted with a warning', async () => {
    const res = await fetch(`${url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify({
        specversion: '1.0',
        id: `${runId}-long`,
        source: '/s',
        type: 't',
        averyveryverylongextensionname: 'v',
      }),
    });
    assert.equal(res.status, 202);
    assert.match(res.headers.get('warning') ?? '', /averyveryverylongextensionname.*20 characters/);
    await stack.handledMore(1);
  });

  test('when the CloudEvents spec examples are posted, then each is stored and reads back as written', async () => {
    for (const example of specExamples) {
      const res = await fetch(`${url}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': example.contentType, ...(example.headers ?? {}) },
        body: example.body,
      });
      const answer = await res.text();
      assert.equal(res.status, 202, `${example.name} (${example.source}): ${answer}`);
      const accepted = (JSON.parse(answer) as { accepted: { source: string; id: string }[] }).accepted;
      await stack.handledMore(accepted.length);
      for (const ref of accepted) {
        const back = await fetch(
          `${url}/v1/events/${encodeURIComponent(ref.source)}/${encodeURIComponent(ref.id)}`,
        );
        assert.equal(back.status, 200, example.name);
        const text = await back.text();
        const event = HTTP.toEvent({
          headers: Object.fromEntries(back.headers),
          body: text,
        }) as CloudEvent<unknown>;
        assert.equal(event.id, ref.id, example.name);
        if (example.headers) {
          // Binary mode: the headers' attributes, Content-Type as datacontenttype, the body as data.
          assert.deepEqual(JSON.parse(text), {
            ...Object.fromEntries(
              Object.entries(example.headers).map(([k, v]) => [k.slice('ce-'.length), v]),
            ),
            datacontenttype: example.contentType,
            data: JSON.parse(example.body),
          });
        } else {
          // Structured and batched: the very text that was sent, token for token.
          const sent = [JSON.parse(example.body)].flat().find((e: { id: string }) => e.id === ref.id);
          assert.equal(
            canonicalJson(text),
            canonicalJson(example.body.startsWith('[') ? JSON.stringify(sent) : example.body),
          );
        }
      }
    }
  });
});
