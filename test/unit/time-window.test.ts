import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readEventText } from '../../ingest/contract.ts';
import { consumerGraceMs, outsideWindow, timeWindow } from '../../ingest/time-window.ts';

const now = Date.parse('2026-12-08T05:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

test('when events are kept forever, then the window runs from pastMonths back to the end of monthsAhead', () => {
  const window = timeWindow({ retentionDays: 0, pastMonths: 24, monthsAhead: 1 }, now);
  assert.equal(iso(window.fromMs), '2024-12-01T00:00:00.000Z');
  assert.equal(iso(window.toMs), '2027-02-01T00:00:00.000Z');
});

test('when retention is set, then the window starts with the oldest month it keeps', () => {
  const window = timeWindow({ retentionDays: 90, pastMonths: 24, monthsAhead: 0 }, now);
  assert.equal(iso(window.fromMs), '2026-09-01T00:00:00.000Z');
  assert.equal(iso(window.toMs), '2027-01-01T00:00:00.000Z');
});

test('when the consumer reads the window, then it is 14 days wider on each side, within years 0001–9999', () => {
  const policy = { retentionDays: 0, pastMonths: 24, monthsAhead: 1 };
  const api = timeWindow(policy, now);
  const consumer = timeWindow(policy, now, consumerGraceMs);
  assert.equal(api.fromMs - consumer.fromMs, 14 * 86_400_000);
  assert.equal(consumer.toMs - api.toMs, 14 * 86_400_000);
  const widest = timeWindow({ retentionDays: 0, pastMonths: 120_000, monthsAhead: 24 }, now, consumerGraceMs);
  assert.equal(iso(widest.fromMs), '0001-01-01T00:00:00.000Z');
});

test('when a time is outside the window, then the contract refuses it naming /time and the range', () => {
  const window = timeWindow({ retentionDays: 0, pastMonths: 24, monthsAhead: 1 }, now);
  assert.equal(outsideWindow(window, now), undefined);
  assert.equal(outsideWindow(window, window.fromMs), undefined, 'the start is inside');
  assert.match(outsideWindow(window, window.toMs) ?? '', /up to \(not including\) 2027-02-01T00:00:00.000Z/);
  const event = (time?: string) =>
    JSON.stringify({ specversion: '1.0', id: '1', source: '/s', type: 't', ...(time ? { time } : {}) });
  const far = readEventText(event('2300-01-01T00:00:00Z'), { window });
  assert.equal(far.ok, false);
  assert.deepEqual(far.ok ? [] : far.problems.map((p) => p.path), ['/time']);
  assert.match(far.ok ? '' : (far.problems[0]?.message ?? ''), /from 2024-12-01T00:00:00.000Z/);
  assert.equal(readEventText(event(), { window }).ok, true, 'no time: the receipt time fits');
  assert.equal(readEventText(event('2300-01-01T00:00:00Z')).ok, true, 'without a window, years 0001–9999');
});
