import { runbookUrl } from './runbooks.ts';
import type { AlertingRule, RecordingRule, RuleGroup } from './types.ts';

/**
 * The durability SLI: every event the API accepted is stored or in the DLQ, minutes later.
 *
 * From metrics alone it is a reconciliation of two processes' counters: accepted events
 * (`ingesta_events_published_total{outcome="ok"}`, API) against handled messages
 * (`ingesta_events_stored_total`, consumer: inserted, duplicate or rejected to the DLQ). Plain
 * differences of totals break on every pod restart (counter resets), and `increase()` over different
 * windows drifts with extrapolation (−3.4 events over 15 minutes with nothing lost), so:
 * - both sides are `increase()` over the same window (reset-safe, and extrapolated at the same edges),
 *   summed over pods: over a window, accepted = handled + what is still queued + what was lost;
 * - the gap (accepted − handled) is bad only above a tolerance (a few events plus a share of the
 *   traffic: the messages in flight at the window's end, extrapolation at its edges), and only when
 *   it holds for `for`: an event not stored after that long is the alert's "accepted but not stored";
 * - redeliveries and client retries count on the handled side as duplicates: they can hide a loss,
 *   never invent one; so does a backlog being worked off;
 * - when the consumer stops reporting, its side counts as 0, so the gap is everything accepted.
 * Which events are missing, the counters cannot say: the store audit (db/store-audit.ts) checks a
 * sample of accepted keys in the store itself.
 */
export interface DurabilityWindows {
  /** The window both counters' increases are taken over. */
  window: string;
  /** How long the gap must hold before the alert fires: "not stored after N minutes". */
  for: string;
}

/** Production windows. */
export const durabilityWindows: DurabilityWindows = { window: '15m', for: '10m' };

/** Unreconciled events never alert below this count, nor below this share of the accepted ones. */
export const durabilityTolerance = { events: 5, share: 0.01 };

export const durabilityRecords = {
  accepted: 'ingesta:events_accepted:increase',
  handled: 'ingesta:events_handled:increase',
  unreconciled: 'ingesta:events_unreconciled:count',
  ratio: 'ingesta:events_unreconciled:ratio',
} as const;

const accepted = 'ingesta_events_published_total{outcome="ok"}';
const handled = 'ingesta_events_stored_total{outcome=~"inserted|duplicate|rejected"}';

export function durabilityRuleGroup(windows: DurabilityWindows = durabilityWindows): RuleGroup {
  const r = durabilityRecords;
  const recording: RecordingRule[] = [
    {
      record: r.accepted,
      expr: `sum by (namespace) (increase(${accepted}[${windows.window}]))`,
    },
    {
      record: r.handled,
      // A consumer that stopped reporting handled nothing: 0, not an empty result.
      expr: [
        `sum by (namespace) (increase(${handled}[${windows.window}]))`,
        `or on (namespace) (0 * ${r.accepted})`,
      ].join('\n'),
    },
    {
      record: r.unreconciled,
      expr: `clamp_min(${r.accepted} - on (namespace) ${r.handled}, 0)`,
    },
    {
      record: r.ratio,
      expr: `${r.unreconciled} / on (namespace) (${r.accepted} > 0)`,
    },
  ];
  const alert: AlertingRule = {
    alert: 'IngestaEventsNotStored',
    expr: [
      `${r.unreconciled}`,
      `  > on (namespace) (${durabilityTolerance.events} + ${durabilityTolerance.share} * ${r.accepted})`,
    ].join('\n'),
    for: windows.for,
    labels: { severity: 'page', slo: 'durability' },
    annotations: {
      summary: 'ingesta accepted events that were neither stored nor dead-lettered',
      description:
        `About {{ $value | printf "%.0f" }} of the events the API accepted in namespace ` +
        `{{ $labels.namespace }} over the last ${windows.window} have been neither stored nor moved to the ` +
        `DLQ, and the gap has held for ${windows.for}: the consumer is stopped, far behind, or losing ` +
        'messages. Every 202 is a promise.',
      runbook_url: runbookUrl('IngestaEventsNotStored'),
    },
  };
  return { name: 'ingesta-slo-durability.rules', rules: [...recording, alert] };
}
