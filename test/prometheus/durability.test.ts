/**
 * The durability SLI on a live Prometheus: the API and the consumer as real processes, traffic
 * streaming in, and the consumer stopped with SIGSTOP mid-stream, so its scrapes fail as a hung pod's
 * do. The rules are the chart's durability rules with windows scaled from minutes to seconds.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { durabilityRecords, durabilityRuleGroup } from '../../observability/rules/durability-rules.ts';
import { type RunningProcess, spawnEntry } from '../support/processes.ts';
import { type Backends, orderEvent, startBackends } from '../support/stack.ts';
import {
  type PrometheusServer,
  pollUntil,
  serviceMonitorTarget,
  startPrometheus,
} from './prometheus-server.ts';

const namespace = 'ingesta';
const firing = `ALERTS{alertname="IngestaEventsNotStored", alertstate="firing", namespace="${namespace}"}`;

describe('the durability SLI on a live Prometheus', () => {
  let backends: Backends | undefined;
  let api: RunningProcess | undefined;
  let consumer: RunningProcess | undefined;
  let prometheus: PrometheusServer | undefined;
  let scratch = '';
  let streaming = true;
  let stream: Promise<number> = Promise.resolve(0);
  const killChildren = () => {
    for (const entry of [api, consumer]) entry?.child.kill('SIGKILL');
  };

  before(async () => {
    const deadline = Date.now() + 40_000;
    backends = await startBackends();
    const env = { ...backends.env, AWS_REGION: backends.messaging.region, QUEUE_METRICS_INTERVAL_MS: '1000' };
    api = spawnEntry('api', env);
    consumer = spawnEntry('consumer', env);
    process.once('exit', killChildren);
    const [listening, polling] = await Promise.all([
      api.waitForLog((line) => line.msg === 'api listening'),
      consumer.waitForLog((line) => line.msg === 'consumer polling'),
    ]);
    scratch = mkdtempSync(join(tmpdir(), 'ingesta-durability-'));
    const rulesFile = join(scratch, 'rules.yaml');
    writeFileSync(rulesFile, stringify({ groups: [durabilityRuleGroup({ window: '20s', for: '3s' })] }));
    prometheus = await startPrometheus({
      targets: [
        serviceMonitorTarget('api', Number(listening.adminPort), namespace),
        serviceMonitorTarget('consumer', Number(polling.adminPort), namespace),
      ],
      ruleFiles: [rulesFile],
      intervalSec: 1,
      deadlineMs: deadline,
    });
    // A steady stream of accepted events, about 20 a second, until the test ends.
    const url = `http://127.0.0.1:${listening.port}/v1/events`;
    stream = (async () => {
      let accepted = 0;
      while (streaming) {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/cloudevents+json' },
          body: JSON.stringify(orderEvent()),
        });
        if (res.status === 202) accepted++;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return accepted;
    })();
  });

  after(async () => {
    streaming = false;
    await stream.catch(() => 0);
    consumer?.child.kill('SIGCONT');
    await prometheus?.stop();
    await Promise.allSettled([api?.stop(), consumer?.stop()]);
    process.off('exit', killChildren);
    await backends?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  const vector = async (expr: string) => {
    const result = await prometheus?.query(expr);
    return result?.status === 'success' && result.data.resultType === 'vector' ? result.data.result : [];
  };

  test('when the consumer is stopped mid-stream, then IngestaEventsNotStored fires, and when it resumes, the alert resolves', {
    timeout: 150_000,
  }, async () => {
    const server = prometheus as PrometheusServer;
    // Flowing: events accepted and handled, the gap within the tolerance, nothing firing.
    await pollUntil(
      async () => {
        const handled = await vector(`${durabilityRecords.handled} > 20`);
        return handled.length > 0 && (await vector(firing)).length === 0 ? true : undefined;
      },
      Date.now() + 40_000,
      () => `events flow and nothing fires\n${server.logs.join('\n')}`,
    );

    consumer?.child.kill('SIGSTOP');
    const fired = await pollUntil(
      async () => {
        const alerts = await vector(firing);
        return alerts.length > 0 ? alerts : undefined;
      },
      Date.now() + 45_000,
      () => 'IngestaEventsNotStored fires while the consumer is stopped',
    );
    assert.equal(fired[0]?.metric.severity, 'page');
    const targets = await server.api<{ activeTargets: { labels: Record<string, string>; health: string }[] }>(
      '/api/v1/targets?state=active',
    );
    assert.equal(
      targets.activeTargets.find((t) => t.labels.job === 'ingesta-consumer')?.health,
      'down',
      'the stopped consumer is not scraped: the alert fired on the API side alone',
    );

    consumer?.child.kill('SIGCONT');
    await pollUntil(
      async () => ((await vector(firing)).length === 0 ? true : undefined),
      Date.now() + 90_000,
      () => 'IngestaEventsNotStored resolves once the consumer has caught up',
    );
    const [unreconciled] = await vector(durabilityRecords.unreconciled);
    assert.ok(Number(unreconciled?.value[1]) <= 5, `caught up: ${JSON.stringify(unreconciled)}`);
  });
});
