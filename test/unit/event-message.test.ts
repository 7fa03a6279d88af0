import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { acceptEvent, maxEventBytes } from '../../ingest/contract.ts';
import { attributeNames, parseMessage, toOutgoingMessage } from '../../ingest/message.ts';

const event = {
  specversion: '1.0' as const,
  id: 'e-1',
  source: '/shop/web',
  type: 'order.created',
  data: { q: 1 },
};

describe('event message wire format', () => {
  test('when an event is sent and received raw, then it round-trips with its accepted time and trace context', () => {
    const out = toOutgoingMessage(acceptEvent(event), 1_700_000_000_000, {
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
    assert.equal(out.attributes.type?.StringValue, 'order.created');
    assert.equal(out.attributes.source?.StringValue, '/shop/web');
    assert.ok(Object.keys(out.attributes).length <= 10, 'SNS drops trace context past 10 attributes');
    const attrs = Object.fromEntries(
      Object.entries(out.attributes).map(([k, v]) => [
        k,
        { DataType: v.DataType, StringValue: v.StringValue },
      ]),
    );
    const parsed = parseMessage({ Body: out.body, MessageAttributes: attrs });
    assert.ok(parsed.ok);
    assert.equal(parsed.acceptedAtMs, 1_700_000_000_000);
    assert.equal(parsed.trace.traceparent, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    assert.equal(parsed.event.text, JSON.stringify(event), 'the body is the event as sent');
    assert.equal(parsed.event.time, undefined, 'the event has no time of its own');
    assert.equal(parsed.timeDefaulted, true);
    assert.equal(
      parsed.time.normalized,
      '2023-11-14T22:13:20.000000Z',
      'it is filed under the accepted time',
    );
  });

  test('when the body is an SNS envelope, then the event and attributes inside are used', () => {
    const parsed = parseMessage({
      Body: JSON.stringify({
        Type: 'Notification',
        Message: JSON.stringify(event),
        MessageAttributes: { [attributeNames.acceptedAt]: { Type: 'Number', Value: '42' } },
      }),
    });
    assert.ok(parsed.ok);
    assert.equal(parsed.acceptedAtMs, 42);
  });

  test('when a message can never succeed, then it is rejected with a code and a reason', () => {
    const cases = [
      ['not json', 'NOT_JSON'],
      [JSON.stringify({ ...event, specversion: '2.0' }), 'SCHEMA_VIOLATION'],
      [JSON.stringify({ Type: 'Notification', Message: '{oops' }), 'NOT_JSON'],
      [JSON.stringify({ ...event, data: 'x'.repeat(maxEventBytes) }), 'EVENT_TOO_LARGE'],
    ] as const;
    for (const [body, code] of cases) {
      const parsed = parseMessage({ Body: body });
      assert.equal(parsed.ok, false);
      if (!parsed.ok) {
        assert.equal(parsed.code, code);
        assert.ok(parsed.reason.length > 5);
      }
    }
  });

  test('when a body is not JSON, then the reason says where without quoting the body', () => {
    const reasons = [
      'card 4111111111111111 expires',
      '{"a":1,',
      '',
      JSON.stringify({ Type: 'Notification', Message: 'secret-token-123' }),
    ].map((body) => {
      const parsed = parseMessage({ Body: body });
      assert.equal(parsed.ok, false);
      return parsed.ok ? '' : parsed.reason;
    });
    assert.deepEqual(reasons, [
      'the body is not valid JSON: unexpected token',
      'the body is not valid JSON: invalid JSON at position 7',
      'the body is not valid JSON: unexpected end of input',
      'the body is not valid JSON: unexpected token',
    ]);
  });
});
