import {
  type Attributes,
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';

/**
 * The trace model for work that many units share (one PublishBatch call for the messages of several
 * requests, one multi-row INSERT for the messages of a batch): each unit's own trace gets a span for
 * its share of the call, as a child of that unit's context, and the call itself runs with tracing
 * suppressed, so it attaches to no one unit's trace and starts none of its own. A unit that was not
 * sampled gets a non-recording span: the producer's sampling decision holds end to end.
 *
 * Returns what `call` returns; every share span ends with the call, marked as an error if it failed.
 */
export async function withSharedCallSpans<T>(
  tracer: Tracer,
  name: string,
  parents: readonly Context[],
  attributes: Attributes,
  call: () => Promise<T>,
): Promise<T> {
  const spans: Span[] = [];
  const seen = new Set<string>();
  for (const parent of parents) {
    // Several units of one parent (the events of one request) share one span.
    const key = trace.getSpanContext(parent)?.spanId;
    if (key !== undefined && seen.has(key)) continue;
    if (key !== undefined) seen.add(key);
    spans.push(tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, parent));
  }
  try {
    return await context.with(suppressTracing(context.active()), call);
  } catch (err) {
    for (const span of spans) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
    }
    throw err;
  } finally {
    for (const span of spans) span.end();
  }
}

/**
 * Runs background work (queue polling, queue-depth sampling) with tracing suppressed: it would
 * otherwise make a root trace every few seconds that says nothing. Failures are recorded with
 * {@link recordFailedCall} instead.
 */
export function untraced<T>(work: () => T): T {
  return context.with(suppressTracing(context.active()), work);
}

/** A root span for a failed background call, so a failure is still seen while successes are not. */
export function recordFailedCall(tracer: Tracer, name: string, attributes: Attributes, err: unknown): void {
  const span = tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, ROOT_CONTEXT);
  span.recordException(err as Error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message ?? String(err) });
  span.end();
}

/** The producer context a message carries (W3C `traceparent`/`tracestate`), from the root context. */
export function producerContext(carrier: Record<string, string>): Context {
  return propagation.extract(ROOT_CONTEXT, carrier);
}

/** CloudEvents semantic-convention attributes of one event. */
export function cloudEventAttributes(event: { id: string; source: string; type: string }): Attributes {
  return {
    'cloudevents.event_id': event.id,
    'cloudevents.event_source': event.source,
    'cloudevents.event_type': event.type,
  };
}
