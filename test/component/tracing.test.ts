import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startOtlpReceiver } from '../support/otlp-receiver.ts';
import { spawnEntry } from '../support/processes.ts';
import { type Backends, orderEvent, startBackends } from '../support/stack.ts';

const SERVER = 2;
const PRODUCER = 4;
const CONSUMER = 5;

describe('tracing across processes', () => {
  let backends: Backends;
  before(async () => {
    backends = await startBackends();
  });
  after(() => backends.stop());

  test('when an event is posted, then one trace runs from the POST through publish and process to the INSERT, and logs carry its id', async () => {
    const receiver = await startOtlpReceiver();
    const env = {
      ...backends.env,
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: '100',
      INGESTA_VERSION: '1.2.3-test',
    };
    let apiLogs: Record<string, unknown>[] = [];
    const event = orderEvent();
    let traceparent: string | null = null;
    let consumerLogs: Record<string, unknown>[] = [];
    // Both per-unit lines, `events accepted` and `batch stored`, are debug lines.
    const api = spawnEntry('api', { ...env, OTEL_SERVICE_NAME: 'ingesta-api', LOG_LEVEL: 'debug' });
    const consumer = spawnEntry('consumer', {
      ...env,
      OTEL_SERVICE_NAME: 'ingesta-consumer',
      LOG_LEVEL: 'debug',
    });
    try {
      const listening = await api.waitForLog((l) => l.msg === 'api listening');
      await consumer.waitForLog((l) => l.msg === 'consumer polling');
      const res = await fetch(`http://127.0.0.1:${listening.port}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/cloudevents+json', authorization: 'Bearer secret-token' },
        body: JSON.stringify(event),
      });
      assert.equal(res.status, 202);
      traceparent = res.headers.get('traceparent');
      await consumer.waitForLog((l) => l.msg === 'batch stored');
    } finally {
      apiLogs = api.logs;
      consumerLogs = consumer.logs;
      assert.equal(await api.stop(), 0, 'api exits cleanly, flushing spans');
      assert.equal(await consumer.stop(), 0, 'consumer exits cleanly, flushing spans');
      await receiver.stop();
    }

    const spans = receiver.spans;
    const post = spans.find(
      (s) => s.service === 'ingesta-api' && s.kind === SERVER && s.attributes['http.route'] === '/v1/events',
    );
    assert.ok(post, `a server span for POST /v1/events among ${spans.map((s) => s.name).join(', ')}`);
    const trace = spans.filter((s) => s.traceId === post.traceId);
    const publish = trace.find((s) => s.kind === PRODUCER && s.name.startsWith('publish '));
    assert.ok(publish, 'a producer span');
    assert.equal(publish.attributes['messaging.system'], 'aws.sns');
    assert.equal(publish.attributes['messaging.operation.name'], 'publish');
    assert.equal(publish.attributes['cloudevents.event_id'], event.id, 'CloudEvents attributes on the span');
    assert.ok(
      trace.some((s) => s.service === 'ingesta-api' && /PublishBatch/.test(s.name)),
      'the SNS PublishBatch call',
    );
    const processSpan = trace.find((s) => s.kind === CONSUMER && s.name.startsWith('process '));
    assert.ok(processSpan, 'the consumer process span joins the trace');
    assert.equal(processSpan.service, 'ingesta-consumer');
    assert.equal(processSpan.parentSpanId, publish.spanId, 'process continues the publish span');
    assert.ok(
      processSpan.links.some((l) => l.spanId === publish.spanId),
      'and links it',
    );
    assert.equal(processSpan.attributes['cloudevents.event_type'], event.type);
    const insert = trace.find(
      (s) =>
        s.service === 'ingesta-consumer' &&
        s.attributes['db.operation.name'] === 'INSERT' &&
        s.attributes['db.collection.name'] === 'events',
    );
    assert.ok(
      insert,
      `an INSERT span in the trace: ${trace.map((s) => `${s.service}:${s.name}`).join(', ')}`,
    );
    assert.equal(post.name, 'POST /v1/events', 'the server span is named by its route');
    assert.equal(post.resource['service.version'], '1.2.3-test', 'service.version on the spans');
    assert.equal(traceparent?.split('-')[1], post.traceId, 'the 202 names its trace in traceparent');
    assert.equal(
      spans.filter((s) => s.parentSpanId === '' && /receive|GetQueueAttributes/i.test(s.name)).length,
      0,
      'polling and queue sampling leave no root traces',
    );
    const apiSpans = trace.filter((s) => s.service === 'ingesta-api').map((s) => s.name);
    assert.deepEqual(
      apiSpans.filter((name) => /^(middleware|request handler|router)\b/.test(name)),
      [],
      'no span per Express layer',
    );
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    let ancestor = byId.get(insert.parentSpanId);
    while (ancestor && ancestor !== processSpan) ancestor = byId.get(ancestor.parentSpanId);
    assert.equal(ancestor, processSpan, 'the INSERT runs inside the process span');

    const accepted = apiLogs.find((l) => l.msg === 'events accepted');
    assert.equal(accepted?.trace_id, post.traceId, 'the API log line carries the trace id');
    assert.match(String(accepted?.span_id), /^[0-9a-f]{16}$/);
    assert.match(String(accepted?.requestId), /^[0-9a-f-]{36}$/, 'and the request id');
    const stored = consumerLogs.find((l) => l.msg === 'batch stored');
    assert.equal(stored?.trace_id, post.traceId, 'the consumer log line carries the same trace id');
    const everything = JSON.stringify([...apiLogs, ...consumerLogs]);
    assert.equal(everything.includes('secret-token'), false, 'credentials are never logged');
    assert.equal(everything.includes('p-7'), false, 'payloads are never logged');
  });

  test('when 30 requests arrive at once with 25 % head sampling, then every sampled request has its whole trace, no unsampled one leaves a consumer span, and OpenMetrics exemplars name sampled traces', async () => {
    const receiver = await startOtlpReceiver();
    const env = {
      ...backends.env,
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
    };
    const api = spawnEntry('api', { ...env, OTEL_SERVICE_NAME: 'ingesta-api' });
    const consumer = spawnEntry('consumer', {
      ...env,
      OTEL_SERVICE_NAME: 'ingesta-consumer',
      LOG_LEVEL: 'debug',
    });
    const requests = 30;
    const traceparents: string[] = [];
    const scrapes: { contentType: string; text: string }[] = [];
    try {
      const listening = await api.waitForLog((l) => l.msg === 'api listening');
      const polling = await consumer.waitForLog((l) => l.msg === 'consumer polling');
      const responses = await Promise.all(
        Array.from({ length: requests }, () =>
          fetch(`http://127.0.0.1:${listening.port}/v1/events`, {
            method: 'POST',
            headers: { 'content-type': 'application/cloudevents+json' },
            body: JSON.stringify(orderEvent()),
          }),
        ),
      );
      for (const res of responses) {
        assert.equal(res.status, 202);
        traceparents.push(String(res.headers.get('traceparent')));
      }
      let stored = 0;
      await consumer.waitForLog((l) => {
        if (l.msg !== 'batch stored') return false;
        stored += Number(l.inserted) + Number(l.duplicates);
        return stored >= requests;
      });
      for (const adminPort of [listening.adminPort, polling.adminPort]) {
        const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`, {
          headers: { accept: 'application/openmetrics-text; version=1.0.0' },
        });
        scrapes.push({ contentType: String(res.headers.get('content-type')), text: await res.text() });
      }
    } finally {
      const exits = [await api.stop(), await consumer.stop()];
      await receiver.stop();
      assert.deepEqual(
        exits,
        [0, 0],
        `both exit cleanly: ${JSON.stringify([api.logs.slice(-4), consumer.logs.slice(-4), api.stderr, consumer.stderr])}`,
      );
    }

    const parsed = traceparents.map((tp) => {
      const [, traceId, , flags] = tp.split('-');
      assert.match(String(traceId), /^[0-9a-f]{32}$/, `a traceparent on every 202: ${tp}`);
      return { traceId: String(traceId), sampled: (Number.parseInt(String(flags), 16) & 1) === 1 };
    });
    const sampled = parsed.filter((p) => p.sampled);
    assert.ok(sampled.length > 0 && sampled.length < requests, `some sampled, some not: ${sampled.length}`);
    const spans = receiver.spans;
    for (const { traceId } of sampled) {
      const trace = spans.filter((s) => s.traceId === traceId);
      const names = trace.map((s) => `${s.service}:${s.name}`).join(', ');
      assert.ok(
        trace.some((s) => s.kind === SERVER && s.name === 'POST /v1/events'),
        `HTTP span: ${names}`,
      );
      const publish = trace.find((s) => s.kind === PRODUCER);
      assert.ok(publish, `publish span: ${names}`);
      assert.ok(
        trace.some((s) => s.name === 'SNS.PublishBatch'),
        `its share of PublishBatch: ${names}`,
      );
      const processSpan = trace.find((s) => s.kind === CONSUMER && s.service === 'ingesta-consumer');
      assert.ok(processSpan, `process span: ${names}`);
      assert.equal(processSpan.parentSpanId, publish.spanId);
      const insert = trace.find((s) => s.attributes['db.operation.name'] === 'INSERT');
      assert.ok(insert, `INSERT: ${names}`);
      assert.equal(insert.parentSpanId, processSpan.spanId);
    }
    const requestTraces = new Set(sampled.map((p) => p.traceId));
    const exported = new Set(spans.map((s) => s.traceId));
    for (const [i, metric] of [
      [0, 'http_server_request_duration_seconds_bucket'],
      [1, 'ingesta_event_freshness_seconds_bucket'],
    ] as const) {
      const scrape = scrapes[i];
      assert.match(String(scrape?.contentType), /^application\/openmetrics-text; version=1\.0\.0/);
      assert.match(String(scrape?.text), /# EOF\n$/);
      const exemplars = [
        ...String(scrape?.text).matchAll(
          new RegExp(`^${metric}\\{[^}]*\\} \\S+ # \\{trace_id="([0-9a-f]{32})"`, 'gm'),
        ),
      ].map((m) => String(m[1]));
      assert.ok(
        exemplars.some((traceId) => requestTraces.has(traceId) && exported.has(traceId)),
        `an exemplar of ${metric} names a sampled request's exported trace: ${exemplars.join(', ')}`,
      );
    }
    const orphans = spans.filter((s) => s.service === 'ingesta-consumer' && !requestTraces.has(s.traceId));
    assert.deepEqual(
      orphans.map((s) => s.name),
      [],
      "no consumer span outside a sampled request's trace",
    );
    const unsampled = new Set(parsed.filter((p) => !p.sampled).map((p) => p.traceId));
    assert.equal(spans.filter((s) => unsampled.has(s.traceId)).length, 0, 'nothing of unsampled requests');
  });

  for (const exporter of ['console', 'none'] as const) {
    test(`when OTEL_TRACES_EXPORTER=${exporter}, then the API serves and spans are ${exporter === 'console' ? 'printed to stdout' : 'not exported anywhere'}`, async () => {
      const api = spawnEntry('api', {
        ...backends.env,
        OTEL_TRACES_EXPORTER: exporter,
        OTEL_BSP_SCHEDULE_DELAY: '100',
      });
      try {
        const listening = await api.waitForLog((l) => l.msg === 'api listening');
        const res = await fetch(`http://127.0.0.1:${listening.port}/v1/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/cloudevents+json' },
          body: JSON.stringify(orderEvent()),
        });
        assert.equal(res.status, 202);
      } finally {
        assert.equal(await api.stop(), 0, 'exits cleanly, flushing spans');
      }
      const printed = api.otherStdout.join('\n');
      if (exporter === 'console') {
        assert.match(printed, /traceId: '[0-9a-f]{32}'/, 'a span on stdout');
        assert.match(printed, /'http\.route': '\/v1\/events'/, 'the request span, by route');
      } else {
        assert.doesNotMatch(printed, /traceId/);
      }
    });
  }
});
