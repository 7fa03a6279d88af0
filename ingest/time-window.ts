import { addMonths, earliestMs, endMs, monthStart } from './timestamp.ts';

/**
 * Which event times ingesta stores: each month of `time` is a partition of the store, so the months
 * a client may name are bounded, or one client could make thousands of partitions (and every query
 * without a time range would lock each of them). The window runs from the oldest month retention
 * keeps (or `pastMonths` back when events are kept forever) to the end of `monthsAhead` months after
 * the current one. An event without `time` always fits: it is filed under its receipt time.
 */
export interface TimePolicy {
  /** EVENT_RETENTION_DAYS: the window starts at the month holding now minus this many days. 0: see `pastMonths`. */
  retentionDays: number;
  /** EVENT_TIME_PAST_MONTHS: with retention 0, the window starts this many months before the current one. */
  pastMonths: number;
  /** EVENT_TIME_MONTHS_AHEAD: the window ends with the month this many months after the current one. */
  monthsAhead: number;
}

/** Event times accepted: from `fromMs` (inclusive) to `toMs` (exclusive), ms since the epoch. */
export interface TimeWindow {
  fromMs: number;
  toMs: number;
  /** Why the window is what it is, for the answer that refuses a time. */
  basis: string;
}

export const defaultTimePolicy: TimePolicy = { retentionDays: 0, pastMonths: 24, monthsAhead: 1 };

/**
 * How much wider the consumer's window is than the API's, on both sides: the longest SQS keeps a
 * message (14 days). The window moves with the clock, so a message the API accepted at the edge of a
 * month may reach the consumer after the edge has moved; within this margin it is still stored. The
 * margin can add one month at each end of the partitions, never more.
 */
export const consumerGraceMs = 14 * 86_400_000;

const dayMs = 86_400_000;

/** The window at `nowMs`, widened by `graceMs` on both sides. */
export function timeWindow(policy: TimePolicy, nowMs: number, graceMs = 0): TimeWindow {
  const now = new Date(nowMs);
  const from =
    policy.retentionDays > 0
      ? monthStart(new Date(nowMs - policy.retentionDays * dayMs))
      : addMonths(monthStart(now), -policy.pastMonths);
  const to = addMonths(monthStart(now), policy.monthsAhead + 1);
  const basis =
    policy.retentionDays > 0
      ? `the oldest month kept by the ${policy.retentionDays}-day retention to ${policy.monthsAhead} month(s) ahead`
      : `${policy.pastMonths} month(s) back to ${policy.monthsAhead} month(s) ahead`;
  return {
    fromMs: Math.max(earliestMs, from.getTime() - graceMs),
    toMs: Math.min(endMs, to.getTime() + graceMs),
    basis,
  };
}

/** Why `epochMs` is outside `window`, or undefined when it is inside. */
export function outsideWindow(window: TimeWindow, epochMs: number): string | undefined {
  if (epochMs >= window.fromMs && epochMs < window.toMs) return undefined;
  const from = new Date(window.fromMs).toISOString();
  const to = new Date(window.toMs).toISOString();
  return `must fall from ${from} up to (not including) ${to}: ingesta stores ${window.basis}; leave time out to use the receipt time`;
}
