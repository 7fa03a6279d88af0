import { parseTimestamp } from '../ingest/timestamp.ts';
import { CesqlError, parseCesql } from './cesql.ts';

/** Which stored events a replay sends: fixed filters (indexed columns) and a CESQL expression. */
export interface ReplayFilter {
  type?: string;
  source?: string;
  subject?: string;
  /** Inclusive, on the time each event is filed under. */
  from?: string;
  /** Exclusive. */
  to?: string;
  /** A CloudEvents SQL expression over context attributes (replay/cesql.ts lists the subset). */
  cesql?: string;
}

export interface FilterProblem {
  path: string;
  message: string;
}

/** Checks a filter as the API receives it; times are normalized as the store compares them. */
export function checkFilter(
  filter: ReplayFilter,
): { ok: true; filter: ReplayFilter } | { ok: false; problems: FilterProblem[] } {
  const problems: FilterProblem[] = [];
  const normalized: ReplayFilter = { ...filter };
  for (const name of ['from', 'to'] as const) {
    const value = filter[name];
    if (value === undefined) continue;
    const parsed = parseTimestamp(value);
    if (parsed.ok) normalized[name] = parsed.value.normalized;
    else problems.push({ path: `/body/filter/${name}`, message: parsed.reason });
  }
  if (normalized.from && normalized.to && normalized.from >= normalized.to) {
    problems.push({ path: '/body/filter/to', message: 'must be after from' });
  }
  if (filter.cesql !== undefined) {
    try {
      parseCesql(filter.cesql);
    } catch (err) {
      if (!(err instanceof CesqlError)) throw err;
      problems.push({ path: '/body/filter/cesql', message: err.message });
    }
  }
  return problems.length === 0 ? { ok: true, filter: normalized } : { ok: false, problems };
}

/** The SQL conditions (`?` placeholders, as knex binds them) and their values for the fixed filters. */
export function filterSql(filter: ReplayFilter): { conditions: string[]; values: string[] } {
  const conditions: string[] = [];
  const values: string[] = [];
  const add = (sql: string, value: string) => {
    conditions.push(sql);
    values.push(value);
  };
  if (filter.type !== undefined) add('type = ?', filter.type);
  if (filter.source !== undefined) add('source = ?', filter.source);
  if (filter.subject !== undefined) add('subject = ?', filter.subject);
  if (filter.from !== undefined) add('time >= ?::timestamptz', filter.from);
  if (filter.to !== undefined) add('time < ?::timestamptz', filter.to);
  return { conditions, values };
}

/** The part of a filter only JavaScript can apply: the CESQL expression, over an event's text. */
export function textMatcher(filter: ReplayFilter): ((text: string) => boolean) | undefined {
  if (filter.cesql === undefined) return undefined;
  const matches = parseCesql(filter.cesql);
  return (text) => {
    const { data: _data, data_base64: _base64, ...attributes } = JSON.parse(text) as Record<string, unknown>;
    return matches(attributes);
  };
}
