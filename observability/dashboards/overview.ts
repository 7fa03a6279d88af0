import { type Dashboard, dashboard, query, stat, timeseries } from './grafana.ts';

/** Every query is scoped to the namespace chosen on the dashboard (one release per namespace). */
const ns = 'namespace="$namespace"';
const rate = '$__rate_interval';

const requests = `http_server_request_duration_seconds_count{${ns}}`;

function quantiles(bucket: string, by: string[], legend: string) {
  const grouping = ['le', ...by].join(', ');
  return [0.5, 0.99].map((q) =>
    query(
      `histogram_quantile(${q}, sum by (${grouping}) (rate(${bucket}{${ns}}[${rate}])))`,
      `p${q * 100}${legend ? ` ${legend}` : ''}`,
    ),
  );
}

/**
 * The operator's view: traffic, errors and latency of the API (the http_* series exist only on API pods),
 * the pipeline from publish to store, queue backlog, and the saturation of every pod.
 */
export function overviewDashboard(): Dashboard {
  return dashboard({
    uid: 'ingesta-overview',
    title: 'ingesta / Overview',
    description:
      'Traffic, errors, latency, pipeline throughput and freshness, queues and saturation of ingesta.',
    timeFrom: 'now-3h',
    rows: [
      {
        title: 'API: traffic, errors, latency',
        panels: [
          timeseries({
            title: 'Requests per second by route',
            description: 'HTTP requests answered by the API, by method and Express route template.',
            unit: 'reqps',
            width: 8,
            queries: [query(`sum by (method, route) (rate(${requests}[${rate}]))`, '{{method}} {{route}}')],
          }),
          timeseries({
            title: 'Responses per second by status',
            description:
              'HTTP responses by status code: 202 accepted, 4xx client errors, 503 when SNS refused.',
            unit: 'reqps',
            width: 8,
            queries: [query(`sum by (status_code) (rate(${requests}[${rate}]))`, '{{status_code}}')],
          }),
          timeseries({
            title: '5xx ratio',
            description:
              'Share of requests answered with a 5xx. The availability objective allows 0.1 % (dashed line).',
            unit: 'percentunit',
            width: 8,
            min: 0,
            thresholds: { base: 'transparent', steps: [[0.001, 'red']] },
            queries: [
              query(
                `(sum(rate(http_server_request_duration_seconds_count{${ns}, status_code=~"5.."}[${rate}])) or vector(0))\n` +
                  `/\nsum(rate(${requests}[${rate}]))`,
                '5xx ratio',
              ),
            ],
          }),
          timeseries({
            title: 'Latency p50 and p99 by route',
            description:
              'Server-side request duration. Objectives: 99 % of POST /v1/events within 200 ms, 99 % of GET within 300 ms.',
            unit: 's',
            width: 24,
            height: 9,
            thresholds: {
              base: 'transparent',
              steps: [
                [0.2, 'orange'],
                [0.3, 'red'],
              ],
            },
            queries: quantiles(
              'http_server_request_duration_seconds_bucket',
              ['method', 'route'],
              '{{method}} {{route}}',
            ),
          }),
        ],
      },
      {
        title: 'Pipeline: publish, queue, store',
        panels: [
          timeseries({
            title: 'Events published and stored per second',
            description:
              'Published: events offered to SNS by the API (ok or failed). Stored: messages handled by the consumer ' +
              '(inserted, duplicate of a stored event, or rejected to the DLQ). Inserted should follow published ok.',
            unit: 'ops',
            width: 12,
            queries: [
              query(
                `sum by (outcome) (rate(ingesta_events_published_total{${ns}}[${rate}]))`,
                'published {{outcome}}',
              ),
              query(
                `sum by (outcome) (rate(ingesta_events_stored_total{${ns}}[${rate}]))`,
                'stored {{outcome}}',
              ),
            ],
          }),
          timeseries({
            title: 'Freshness p50 and p99',
            description:
              'Time from acceptance by the API to storage by the consumer. Objective: 99 % within 5 s (dashed line).',
            unit: 's',
            width: 12,
            thresholds: { base: 'transparent', steps: [[5, 'red']] },
            queries: quantiles('ingesta_event_freshness_seconds_bucket', [], ''),
          }),
          timeseries({
            title: 'Queue depth',
            description:
              'Messages waiting (visible) and being handled (in flight) in the main queue and the dead-letter queue, ' +
              'sampled from SQS by the consumers.',
            unit: 'short',
            width: 10,
            min: 0,
            queries: [query(`max by (queue, state) (ingesta_queue_messages{${ns}})`, '{{queue}} {{state}}')],
          }),
          timeseries({
            title: 'Oldest message age',
            description:
              'Age of the oldest message per queue. Above 5 s in the main queue, events miss the freshness objective.',
            unit: 's',
            width: 10,
            min: 0,
            thresholds: { base: 'transparent', steps: [[5, 'red']] },
            queries: [query(`max by (queue) (ingesta_queue_oldest_message_age_seconds{${ns}})`, '{{queue}}')],
          }),
          stat({
            title: 'Dead-letter queue',
            description:
              'Messages waiting in the DLQ: events that could not be stored. Inspect and redrive them.',
            unit: 'short',
            width: 4,
            thresholds: { base: 'green', steps: [[1, 'red']] },
            queries: [query(`max(ingesta_queue_messages{${ns}, queue="dlq", state="visible"})`, 'messages')],
          }),
          timeseries({
            title: 'Consumer batch duration p50 and p99',
            description: 'Time to handle one received batch, from receipt to COMMIT.',
            unit: 's',
            width: 12,
            queries: quantiles('ingesta_consumer_batch_duration_seconds_bucket', [], ''),
          }),
          timeseries({
            title: 'Time since last SQS poll by pod',
            description:
              'Seconds since each consumer pod last completed a poll; long polls take at most 20 s. ' +
              'Above 90 s the consumer is stalled (dashed line).',
            unit: 's',
            width: 12,
            min: 0,
            thresholds: { base: 'transparent', steps: [[90, 'red']] },
            queries: [
              // A consumer exports 0 until its first poll: only pods that have polled count.
              query(
                `time() - max by (pod) (ingesta_consumer_last_poll_timestamp_seconds{${ns}} > 0)`,
                '{{pod}}',
              ),
            ],
          }),
        ],
      },
      {
        title: 'Replays',
        panels: [
          timeseries({
            title: 'Replayed events sent per second',
            description:
              'Events replays send to their targets (docs/adr/0006-replay-position.md), summed over pods.',
            unit: 'short',
            width: 12,
            min: 0,
            queries: [query(`sum(rate(ingesta_replay_events_sent_total{${ns}}[${rate}]))`, 'sent')],
          }),
          timeseries({
            title: 'Replays held and time since their last progress, by pod',
            description:
              'Replays each consumer pod holds, and seconds since it last sent a step or found a following ' +
              'replay caught up (0 while it holds none). Above 600 s, IngestaReplayStalled opens a ticket.',
            unit: 's',
            width: 12,
            min: 0,
            thresholds: { base: 'transparent', steps: [[600, 'red']] },
            queries: [
              // 0 while a pod holds no replay: its last progress time means nothing then.
              query(
                `(time() - max by (pod) (ingesta_replay_last_progress_timestamp_seconds{${ns}})) * on (pod) (max by (pod) (ingesta_replays_active{${ns}}) > bool 0)`,
                '{{pod}} since progress',
              ),
              query(`max by (pod) (ingesta_replays_active{${ns}})`, '{{pod}} replays held'),
            ],
          }),
        ],
      },
      {
        title: 'Saturation',
        panels: [
          timeseries({
            title: 'Event-loop lag p99 by pod',
            description: 'A busy or blocked event loop delays every request and message of the pod.',
            unit: 's',
            width: 12,
            min: 0,
            queries: [query(`max by (pod) (nodejs_eventloop_lag_p99_seconds{${ns}})`, '{{pod}}')],
          }),
          timeseries({
            title: 'Database pool connections by pod',
            description:
              'Connections in use and callers waiting for one. Waiting above zero means the pool (DATABASE_POOL_MAX) is exhausted.',
            unit: 'short',
            width: 12,
            min: 0,
            queries: [
              query(
                `sum by (pod, state) (ingesta_db_pool_connections{${ns}, state=~"used|waiting"})`,
                '{{pod}} {{state}}',
              ),
            ],
          }),
          timeseries({
            title: 'CPU by pod',
            description:
              'CPU seconds per second (cores) used by each process; the container limit is 1 core by default.',
            unit: 'short',
            width: 12,
            min: 0,
            queries: [query(`sum by (pod) (rate(process_cpu_seconds_total{${ns}}[${rate}]))`, '{{pod}}')],
          }),
          timeseries({
            title: 'Memory by pod',
            description:
              'Resident memory and V8 heap in use per process; the heap is capped at 75 % of the memory limit.',
            unit: 'bytes',
            width: 12,
            min: 0,
            queries: [
              query(`sum by (pod) (process_resident_memory_bytes{${ns}})`, '{{pod}} resident'),
              query(`sum by (pod) (nodejs_heap_size_used_bytes{${ns}})`, '{{pod}} heap used'),
            ],
          }),
        ],
      },
    ],
  });
}
