import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Span } from '@opentelemetry/api';
import { nameByRoute } from '../../platform/telemetry/tracing.ts';

/** A span that records what it is given. */
function recordingSpan() {
  const seen: { name?: string; route?: unknown } = {};
  const span = {
    setAttribute(key: string, value: unknown) {
      if (key === 'http.route') seen.route = value;
      return span;
    },
    updateName(name: string) {
      seen.name = name;
      return span;
    },
  };
  return { span: span as unknown as Span, seen };
}

describe('HTTP server span names', () => {
  test('when Express matched a route, then the span is named by its template', () => {
    const { span, seen } = recordingSpan();
    nameByRoute(span, { method: 'GET', url: '/v1/events/a/b', route: { path: '/v1/events/:source/:id' } });
    assert.deepEqual(seen, { name: 'GET /v1/events/:source/:id', route: '/v1/events/:source/:id' });
  });

  test('when the validator refused a request before routing, then the span carries the OpenAPI route, as the metrics do', () => {
    const { span, seen } = recordingSpan();
    nameByRoute(span, { method: 'POST', url: '/v1/events', openapi: { expressRoute: '/v1/events' } });
    assert.deepEqual(seen, { name: 'POST /v1/events', route: '/v1/events' });
  });

  test('when nothing matched, then the raw path never becomes the name', () => {
    const { span, seen } = recordingSpan();
    nameByRoute(span, { method: 'GET', url: '/no/such/path' });
    assert.deepEqual(seen, {});
  });
});
