import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { createGuardMetrics, samplePartitions } from '../../platform/guard-metrics.ts';

test('when the partition gauge is scraped, then it reports the last count and counts again in the background at most once per interval', async () => {
  const registry = new Registry();
  const metrics = createGuardMetrics(registry);
  let clock = 0;
  let calls = 0;
  let answer: () => Promise<number> = async () => 29;
  samplePartitions(
    metrics,
    () => {
      calls++;
      return answer();
    },
    { maxAgeMs: 1_000, now: () => clock },
  );
  const scrape = async () =>
    (await registry.getSingleMetric('ingesta_event_partitions')?.get())?.values[0]?.value;
  assert.equal(await scrape(), 0, 'the first scrape does not wait for the count');
  await new Promise(setImmediate);
  assert.equal(await scrape(), 29);
  assert.equal(calls, 1, 'one count per interval');
  clock += 1_000;
  answer = () => new Promise(() => {}); // the database hangs
  assert.equal(await scrape(), 29, 'a hanging count never holds a scrape');
  clock += 1_000;
  await scrape();
  assert.equal(calls, 2, 'no second count while one is running');
});
