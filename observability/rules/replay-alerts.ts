import { runbookUrl } from './runbooks.ts';
import type { RuleGroup } from './types.ts';

/** Seconds a held replay may go without sending or confirming it caught up before it counts as stalled. */
export const replayStallSec = 600;

/** Replays (replay/worker.ts): a replay a pod holds but neither moves nor waits caught up. */
export function replayRuleGroup(): RuleGroup {
  return {
    name: 'ingesta.replays',
    rules: [
      {
        alert: 'IngestaReplayStalled',
        // Per pod: a pod that holds a replay reports progress on every step, and while caught up.
        expr:
          `max by (namespace) ((time() - ingesta_replay_last_progress_timestamp_seconds > ${replayStallSec})` +
          ' and on (namespace, pod) ingesta_replays_active > 0)',
        for: '5m',
        labels: { severity: 'ticket' },
        annotations: {
          summary: 'An ingesta replay has made no progress for 10 minutes',
          description:
            'A consumer pod in namespace {{ $labels.namespace }} holds a replay but has neither sent events ' +
            'nor found it caught up for more than 10 minutes: its target refuses the sends, or a long ' +
            'transaction holds the store position back.',
          runbook_url: runbookUrl('IngestaReplayStalled'),
        },
      },
    ],
  };
}
