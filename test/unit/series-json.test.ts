import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SeriesJson, type SeriesRow, type SeriesSummary, type StatsRange } from '../../db/count-series.ts';

const hourMs = 3_600_000;
const t0 = Date.parse('2026-06-01T10:00:00Z');

/** A minute series row: `counts` fills the first slots, the rest are 0. */
const row = (hour: number, type: string, version: number, counts: number[]): SeriesRow => ({
  periodStartMs: String(t0 + hour * hourMs),
  type,
  version: String(version),
  counts: `{${[...counts, ...Array(60 - counts.length).fill(0)].join(',')}}`,
});

/** The summary the stats statement would read for `rows`, all of them in whole periods. */
const summaryOf = (rows: SeriesRow[], epoch = 'e1'): SeriesSummary => ({
  starts: rows.map((r) => r.periodStartMs).join(','),
  types: JSON.stringify(rows.map((r) => r.type)),
  versions: rows.map((r) => r.version).join(','),
  cut: null,
  epoch,
});

const range: StatsRange = {
  bucket: 'minute',
  fromMs: t0,
  toMs: t0 + 3 * hourMs,
  scope: 'all sources',
  types: 'all types',
};

/** Renders `summary` with `rows` as the database's current rows; returns the buckets and the fetches made. */
async function answer(json: SeriesJson, summary: SeriesSummary, rows: SeriesRow[]) {
  const fetches: string[][] = [];
  const chunks = await json.render(summary, range, async (periods) => {
    fetches.push(periods);
    return rows.filter((r) => periods.includes(r.periodStartMs));
  });
  return { buckets: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown[], fetches };
}

describe('stats rendering (SeriesJson)', () => {
  test('when a whole period changes on every answer, then it is rendered anew and what is kept does not grow', async () => {
    const json = new SeriesJson();
    for (let version = 2; version < 50; version++) {
      const rows = [row(0, 'a', 1, [1]), row(1, 'a', version, [version])];
      const { buckets, fetches } = await answer(json, summaryOf(rows), rows);
      assert.deepEqual(buckets, [
        { start: '2026-06-01T10:00:00.000000Z', type: 'a', count: 1 },
        { start: '2026-06-01T11:00:00.000000Z', type: 'a', count: version },
      ]);
      assert.deepEqual(
        fetches,
        version === 2 ? [[rows[0]?.periodStartMs, rows[1]?.periodStartMs]] : [[rows[1]?.periodStartMs]],
      );
    }
    assert.equal(json.kept.places, 3, 'two periods and the answer, each in one place');
    const rows = [row(0, 'a', 1, [1]), row(1, 'a', 49, [49])];
    assert.deepEqual((await answer(json, summaryOf(rows), rows)).fetches, [], 'the last answer, as kept');
  });

  test('when counts are fetched after a newer write, then the answer carries the newer counts', async () => {
    const json = new SeriesJson();
    const read = [row(0, 'a', 1, [1])];
    const newer = [row(0, 'a', 2, [7])];
    assert.deepEqual((await answer(json, summaryOf(read), newer)).buckets, [
      { start: '2026-06-01T10:00:00.000000Z', type: 'a', count: 7 },
    ]);
    const again = await answer(json, summaryOf(newer), newer);
    assert.deepEqual(again.fetches, [], 'the period was kept under the versions it was rendered from');
    assert.deepEqual(again.buckets, [{ start: '2026-06-01T10:00:00.000000Z', type: 'a', count: 7 }]);
  });

  test('when types hold commas, quotes and bars, then each stays one type', async () => {
    const rows = [row(0, 'a,b', 1, [1]), row(0, 'c"d', 2, [2]), row(0, 'e|f', 3, [3])];
    assert.deepEqual((await answer(new SeriesJson(), summaryOf(rows), rows)).buckets, [
      { start: '2026-06-01T10:00:00.000000Z', type: 'a,b', count: 1 },
      { start: '2026-06-01T10:00:00.000000Z', type: 'c"d', count: 2 },
      { start: '2026-06-01T10:00:00.000000Z', type: 'e|f', count: 3 },
    ]);
  });

  test('when the versions come from another epoch, then nothing kept before is served', async () => {
    const json = new SeriesJson();
    const before = [row(0, 'a', 1, [1])];
    await answer(json, summaryOf(before, 'sequence 1'), before);
    // The same version number handed out again: a sequence made anew, another server.
    const after = [row(0, 'a', 1, [4])];
    const { buckets, fetches } = await answer(json, summaryOf(after, 'sequence 2'), after);
    assert.equal(fetches.length, 1);
    assert.deepEqual(buckets, [{ start: '2026-06-01T10:00:00.000000Z', type: 'a', count: 4 }]);
  });

  test('when what is kept passes the limit, then the oldest goes and the bytes stay within it', async () => {
    const json = new SeriesJson({ maxCachedBytes: 300 });
    for (let hour = 0; hour < 3; hour++) {
      const rows = [row(hour, 'a', hour + 1, [1, 1])];
      await answer(json, summaryOf(rows), rows);
      assert.ok(json.kept.bytes <= 300, `${json.kept.bytes} bytes kept`);
    }
    assert.ok(json.kept.places < 6, `${json.kept.places} places for three periods and three answers`);
  });
});
