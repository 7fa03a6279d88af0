import { Counter, Gauge, type Registry } from 'prom-client';

/** The replay worker's metrics, on the consumer's registry. */
export function createReplayMetrics(registry: Registry) {
  return {
    eventsSent: new Counter({
      name: 'ingesta_replay_events_sent_total',
      help: 'Events replays sent to their targets.',
      registers: [registry],
    }),
    lastProgress: new Gauge({
      name: 'ingesta_replay_last_progress_timestamp_seconds',
      help: 'When a replay of this pod last recorded a position (0 before any); the replay stall alert reads it.',
      registers: [registry],
    }),
    active: new Gauge({
      name: 'ingesta_replays_active',
      help: 'Replays this pod holds the lease of.',
      registers: [registry],
    }),
  };
}
