/**
 * The dashboards and alerts on real data: ingesta's API and consumer run as processes against PostgreSQL
 * and the SNS/SQS emulator, a real Prometheus scrapes their admin ports every second with the labels the
 * chart's ServiceMonitor gives (job = Service name, namespace, pod, component) and loads the chart's rules
 * file. After a few seconds of traffic, every dashboard query returns data, every rule is a valid query
 * and every recording rule records a value. Needs `prometheus` (Debian: `apt-get install -y prometheus`;
 * elsewhere set PROMETHEUS to the binary).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { dashboards, expandVariables, panelQueries } from '../../observability/dashboards/generate.ts';
import { rulesFilePath } from '../../observability/rules/rules.ts';
import { isAlertingRule, type RecordingRule, type RulesFile } from '../../observability/rules/types.ts';
import { selector, slos, sloWindow } from '../../observability/slos.ts';
import { type RunningProcess, spawnEntry } from '../support/processes.ts';
import { type Backends, startBackends } from '../support/stack.ts';
import {
  type PrometheusServer,
  pollUntil,
  type QueryResult,
  type RuleGroupState,
  serviceMonitorTarget,
  startPrometheus,
} from './prometheus-server.ts';
import { sendPoisonMessage, sendRound } from './traffic.ts';

const rulesPath = fileURLToPath(new URL(`../../${rulesFilePath}`, import.meta.url));
const rules = parse(readFileSync(rulesPath, 'utf8')) as RulesFile;

const namespace = 'ingesta';
const scrapeIntervalSec = 1;
/** Grafana's $__rate_interval floor is four scrape intervals; 30 s spans the whole traffic phase. */
const rateInterval = '30s';
/** Rounds of traffic, each followed by a scrape of both targets, so every rate sees several samples. */
const trafficRounds = 6;

/** The Express route templates the API has, and the label of requests that match none. */
const routeTemplates = ['/v1/events', '/v1/events/:source/:id', '/v1/stats', 'unmatched'];

/** The metric names of DESIGN.md, each of which must appear on one of the two admin ports. */
const designMetrics = [
  'http_server_request_duration_seconds',
  'ingesta_events_published_total',
  'ingesta_events_stored_total',
  'ingesta_consumer_batch_duration_seconds',
  'ingesta_event_freshness_seconds',
  'ingesta_consumer_last_poll_timestamp_seconds',
  'ingesta_build_info',
  'ingesta_queue_messages',
  'ingesta_queue_oldest_message_age_seconds',
  'ingesta_db_pool_connections',
  'nodejs_eventloop_lag_seconds',
  'process_cpu_seconds_total',
];

const scrapeTarget = (component: 'api' | 'consumer', port: number) =>
  serviceMonitorTarget(component, port, namespace);

/** Data as a panel draws it: a successful query with at least one finite value. */
function hasData(result: QueryResult | undefined): boolean {
  if (result?.status !== 'success') return false;
  const values =
    result.data.resultType === 'vector'
      ? result.data.result.map((sample) => sample.value[1])
      : [result.data.result[1]];
  return values.some((value) => Number.isFinite(Number(value)));
}

function show(result: QueryResult | undefined): string {
  return JSON.stringify(result ?? 'not evaluated');
}

/** Samples of one metric in Prometheus text format: `name{labels} value` lines. */
function sampleLines(text: string, name: string): string[] {
  return text.split('\n').filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `));
}

function labelValues(line: string): Record<string, string> {
  const labels = line.slice(line.indexOf('{') + 1, line.lastIndexOf('}'));
  return Object.fromEntries([...labels.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
}

const queries = panelQueries().map((panel) => ({
  ...panel,
  promql: expandVariables(panel.expr, { namespace, rateInterval }),
}));
const recordingRules = rules.groups.flatMap((group) =>
  group.rules
    .filter((rule): rule is RecordingRule => !isAlertingRule(rule))
    .map((rule) => ({ group: group.name, ...rule })),
);
const alertingRules = rules.groups.flatMap((group) =>
  group.rules.filter(isAlertingRule).map((rule) => ({ group: group.name, ...rule })),
);

describe('dashboards and rules on a live Prometheus', () => {
  let backends: Backends | undefined;
  let api: RunningProcess | undefined;
  let consumer: RunningProcess | undefined;
  let prometheus: PrometheusServer | undefined;
  const metricsText = { api: '', consumer: '' };
  const identifiers: string[] = [];
  /** The last result of every panel and recording rule query, by PromQL. */
  const results = new Map<string, QueryResult>();

  /** Never leave the processes behind, even when the runner dies before `after`. */
  const killChildren = () => {
    for (const entry of [api, consumer]) entry?.child.kill('SIGKILL');
  };

  before(
    async () => {
      const deadline = Date.now() + 70_000;
      backends = await startBackends();
      const env = {
        ...backends.env,
        AWS_REGION: backends.messaging.region,
        QUEUE_METRICS_INTERVAL_MS: '1000',
      };
      api = spawnEntry('api', env);
      consumer = spawnEntry('consumer', env);
      process.once('exit', killChildren);
      const [listening, polling] = await Promise.all([
        api.waitForLog((line) => line.msg === 'api listening'),
        consumer.waitForLog((line) => line.msg === 'consumer polling'),
      ]);
      const apiUrl = `http://127.0.0.1:${listening.port}`;
      const adminUrls = {
        api: `http://127.0.0.1:${listening.adminPort}`,
        consumer: `http://127.0.0.1:${polling.adminPort}`,
      };

      prometheus = await startPrometheus({
        targets: [
          scrapeTarget('api', Number(listening.adminPort)),
          scrapeTarget('consumer', Number(polling.adminPort)),
        ],
        ruleFiles: [rulesPath],
        intervalSec: scrapeIntervalSec,
        deadlineMs: deadline,
      });

      await sendPoisonMessage(backends.messaging);
      const accepted: { source: string; id: string }[] = [];
      for (let round = 0; round < trafficRounds; round++) {
        const sent = await sendRound(apiUrl, accepted[0]);
        accepted.push(...sent.accepted);
        identifiers.push(...sent.identifiers);
        await prometheus.waitForScrapes(Date.now(), deadline);
      }

      // Prometheus has seen every accepted event stored and the poison message in the DLQ.
      const server = prometheus;
      const value = async (expr: string) => {
        const result = await server.query(expr);
        return result.status === 'success' && result.data.resultType === 'vector'
          ? Number(result.data.result[0]?.value[1] ?? Number.NaN)
          : Number.NaN;
      };
      const ns = `namespace="${namespace}"`;
      await pollUntil(
        async () => {
          const [inserted, rejected, dlq] = await Promise.all([
            value(`sum(ingesta_events_stored_total{${ns}, outcome="inserted"})`),
            value(`sum(ingesta_events_stored_total{${ns}, outcome="rejected"})`),
            value(`max(ingesta_queue_messages{${ns}, queue="dlq", state="visible"})`),
          ]);
          return inserted >= accepted.length && rejected >= 1 && dlq >= 1 ? true : undefined;
        },
        deadline,
        () => `Prometheus sees ${accepted.length} events inserted and 1 message in the DLQ`,
      );

      const scrape = async (url: string) => (await fetch(`${url}/metrics`)).text();
      metricsText.api = await scrape(adminUrls.api);
      metricsText.consumer = await scrape(adminUrls.consumer);

      // Like a dashboard refreshing: query until each has data (recording rules need an evaluation or
      // two), then keep the last answer for the tests below. A query Prometheus rejects never changes.
      const pending = new Set([...queries.map((q) => q.promql), ...recordingRules.map((r) => r.expr)]);
      await pollUntil(
        async () => {
          await Promise.all(
            [...pending].map(async (promql) => {
              const result = await server.query(promql);
              results.set(promql, result);
              if (result.status === 'error' || hasData(result)) pending.delete(promql);
            }),
          );
          return pending.size === 0 ? true : undefined;
        },
        Math.min(deadline, Date.now() + 15_000),
        () => `every query returns data; still without: ${[...pending].join('\n')}`,
        500,
      ).catch(() => undefined); // the tests below name each query that stayed empty
    },
    { timeout: 80_000 },
  );

  after(async () => {
    await prometheus?.stop();
    await Promise.allSettled([api?.stop(), consumer?.stop()]);
    process.off('exit', killChildren);
    await backends?.stop();
  });

  test('when Prometheus scrapes both admin ports as the ServiceMonitor does, then the TargetDown selector sees both', async () => {
    const result = await prometheus!.query('up{job=~".*ingesta.*"}');
    assert.equal(result.status, 'success', show(result));
    assert.deepEqual(
      result.data.resultType === 'vector'
        ? result.data.result.map((sample) => `${sample.metric.job}=${sample.value[1]}`).sort()
        : [],
      ['ingesta-api=1', 'ingesta-consumer=1'],
    );
  });

  test('when the traffic has run, then the two admin ports together export every metric of DESIGN.md', () => {
    const both = `${metricsText.api}\n${metricsText.consumer}`;
    const missing = designMetrics.filter((name) =>
      ['', '_bucket', '_count'].every((suffix) => sampleLines(both, `${name}${suffix}`).length === 0),
    );
    assert.deepEqual(missing, [], 'metrics without a single sample');
    const dlq = sampleLines(metricsText.consumer, 'ingesta_queue_messages').find(
      (line) => line.includes('queue="dlq"') && line.includes('state="visible"'),
    );
    assert.ok(dlq && Number(dlq.split(' ').at(-1)) >= 1, `the poison message in the DLQ: ${dlq}`);
  });

  test('when requests named sources and ids, then every http route label is a template and no label holds one', () => {
    const lines = sampleLines(metricsText.api, 'http_server_request_duration_seconds_count');
    const routes = [...new Set(lines.map((line) => labelValues(line).route))].sort();
    assert.deepEqual(routes, [...routeTemplates].sort());
    const leaked = lines.filter((line) =>
      Object.values(labelValues(line)).some((value) =>
        identifiers.some((raw) => value.includes(raw) || value.includes(encodeURIComponent(raw))),
      ),
    );
    assert.deepEqual(leaked, [], 'label values carrying a raw source or id');
  });

  for (const q of queries) {
    test(`when the traffic has run, then panel "${q.panel}" of ${q.dashboard} (${q.legend}) shows data`, () => {
      const result = results.get(q.promql);
      assert.equal(result?.status, 'success', `${q.promql}\n${show(result)}`);
      assert.ok(hasData(result), `no finite value from\n${q.promql}\n${show(result)}`);
    });
  }

  test(`when the traffic has run, then each SLI over ${sloWindow} lies in (0, 1] and availability is 1 without 5xx`, () => {
    const sliPanels = queries.filter((q) => q.panel.endsWith(`SLI, last ${sloWindow}`));
    assert.equal(sliPanels.length, slos.flatMap((slo) => slo.slis).length);
    const values = Object.fromEntries(
      sliPanels.map((q) => {
        const result = results.get(q.promql);
        const sample =
          result?.status === 'success' && result.data.resultType === 'vector'
            ? result.data.result[0]
            : undefined;
        return [q.panel, Number(sample?.value[1])];
      }),
    );
    for (const [panel, value] of Object.entries(values))
      assert.ok(value > 0 && value <= 1, `${panel}: ${value}`);
    assert.equal(values[`Availability SLI, last ${sloWindow}`], 1);
  });

  test('when the traffic has run, then the good and total selector of every SLI each match a series', async () => {
    const ns = `namespace="${namespace}"`;
    const selectors = slos
      .flatMap((slo) => slo.slis.flatMap((sli) => [sli.good, sli.total]))
      .map((s) => selector(s, [ns]));
    const empty: string[] = [];
    for (const expr of selectors) {
      const result = await prometheus!.query(expr);
      if (!hasData(result)) empty.push(`${expr} -> ${show(result)}`);
    }
    assert.deepEqual(empty, []);
  });

  for (const dashboard of dashboards()) {
    test(`when ${dashboard.uid} lists namespaces, then its namespace variable offers "${namespace}"`, async () => {
      const variables = (dashboard.templating as { list: { name: string; definition?: string }[] }).list;
      const definition = variables.find((variable) => variable.name === 'namespace')?.definition ?? '';
      const match = /^label_values\((\w+), *(\w+)\)$/.exec(definition);
      assert.ok(match, `a label_values(metric, label) query: ${definition}`);
      const [, metric, label] = match;
      const values = await prometheus!.api<string[]>(
        `/api/v1/label/${label ?? ''}/values?${new URLSearchParams({ 'match[]': metric ?? '' })}`,
      );
      assert.deepEqual(values, [namespace]);
    });
  }

  test("when Prometheus loads the chart's rules file, then every group is there and every rule is healthy", async () => {
    const { groups } = await prometheus!.api<{ groups: RuleGroupState[] }>('/api/v1/rules');
    assert.deepEqual(
      groups.map((group) => `${group.name}: ${group.rules.length} rules`).sort(),
      rules.groups.map((group) => `${group.name}: ${group.rules.length} rules`).sort(),
    );
    const unhealthy = groups.flatMap((group) =>
      group.rules
        .filter((rule) => rule.health !== 'ok')
        .map((rule) => `${group.name}/${rule.name}: ${rule.health} ${rule.lastError ?? ''}`),
    );
    assert.deepEqual(unhealthy, []);
  });

  for (const rule of recordingRules) {
    const labels = rule.labels ? ` ${JSON.stringify(rule.labels)}` : '';
    test(`when the traffic has run, then recording rule ${rule.record}${labels} has a value`, () => {
      const result = results.get(rule.expr);
      assert.equal(result?.status, 'success', `${rule.expr}\n${show(result)}`);
      assert.ok(hasData(result), `no finite value from\n${rule.expr}\n${show(result)}`);
    });
  }

  for (const rule of alertingRules) {
    const window = rule.labels.long_window ? ` (${rule.labels.long_window}/${rule.labels.short_window})` : '';
    test(`when Prometheus evaluates alert ${rule.alert}${window}, then its expression is a valid query`, async () => {
      const result = await prometheus!.query(rule.expr);
      assert.equal(result.status, 'success', `${rule.expr}\n${show(result)}`);
    });
  }

  test('when a poison message sits in the DLQ, then the IngestaDeadLetterQueueNotEmpty expression matches the namespace', async () => {
    const rule = alertingRules.find((r) => r.alert === 'IngestaDeadLetterQueueNotEmpty');
    assert.ok(rule);
    const result = await prometheus!.query(rule.expr);
    assert.equal(result.status, 'success', show(result));
    assert.deepEqual(
      result.data.resultType === 'vector' ? result.data.result.map((sample) => sample.metric) : [],
      [{ namespace }],
    );
  });
});
