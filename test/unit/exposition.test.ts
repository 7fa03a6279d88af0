import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Counter, Gauge, Histogram, Registry, type RegistryContentType } from 'prom-client';
import { metricsText, negotiateFormat } from '../../platform/exposition.ts';

/** The same metrics, observed the same way, on a registry of the given type. */
function sampleRegistry(
  type: typeof Registry.PROMETHEUS_CONTENT_TYPE | typeof Registry.OPENMETRICS_CONTENT_TYPE,
) {
  const registry = new Registry() as unknown as Registry<RegistryContentType>;
  registry.setContentType(type);
  const exemplars = type === Registry.OPENMETRICS_CONTENT_TYPE;
  const counter = new Counter({
    name: 'x_events_total',
    help: 'Events\\with "quotes"\nand lines.',
    labelNames: ['outcome'],
    registers: [registry],
  });
  counter.inc({ outcome: 'a"b\\c' }, 3);
  new Gauge({ name: 'x_depth', help: 'Depth.', registers: [registry] }).set(Number.POSITIVE_INFINITY);
  const histogram = new Histogram({
    name: 'x_seconds',
    help: 'Seconds.',
    labelNames: ['route'],
    buckets: [0.1, 1],
    enableExemplars: exemplars,
    registers: [registry],
  });
  if (exemplars) {
    histogram.observe({
      labels: { route: '/v1' },
      value: 0.5,
      exemplarLabels: { trace_id: 'a'.repeat(32) } as never,
    });
  } else histogram.observe({ route: '/v1' }, 0.5);
  return registry;
}

describe('/metrics exposition formats', () => {
  test("when text 0.0.4 is asked for, then the output equals prom-client's own", async () => {
    const registry = sampleRegistry(Registry.PROMETHEUS_CONTENT_TYPE);
    assert.equal(await metricsText(registry, 'prometheus'), await registry.metrics());
  });

  test("when OpenMetrics is asked for, then the output equals prom-client's, exemplars included", async () => {
    const registry = sampleRegistry(Registry.OPENMETRICS_CONTENT_TYPE);
    const ours = await metricsText(registry, 'openMetrics');
    // prom-client's own renames the counter in place: read it last.
    const theirs = await registry.metrics();
    assert.equal(ours, theirs);
    assert.match(
      ours,
      /^x_seconds_bucket\{le="1",route="\/v1"\} 1 # \{trace_id="a{32}"\} 0\.5 \d+(\.\d+)?$/m,
    );
    assert.match(ours, /^x_events_total\{/m);
  });

  test('when both formats are served from one registry, then the counter keeps its _total in text 0.0.4', async () => {
    const registry = sampleRegistry(Registry.OPENMETRICS_CONTENT_TYPE);
    await metricsText(registry, 'openMetrics');
    assert.match(await metricsText(registry, 'prometheus'), /^# TYPE x_events_total counter$/m);
  });

  test('when a scraper names OpenMetrics in Accept, then it gets OpenMetrics; otherwise text 0.0.4', () => {
    assert.equal(
      negotiateFormat('application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'),
      'openMetrics',
    );
    assert.equal(negotiateFormat('text/plain'), 'prometheus');
    assert.equal(negotiateFormat(undefined), 'prometheus');
  });
});
