/**
 * RFC 3339 timestamps, parsed once by this module for every layer: the acceptance contract, query
 * parameters, cursors and the store. Neither `Date.parse` (which refuses a leap second and accepts
 * texts RFC 3339 does not) nor PostgreSQL (which refuses some forms RFC 3339 allows) ever sees a
 * client's text: they get `normalized`, which both read the same way.
 *
 * The rules, decided once:
 * - `YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm)`; `T` and `Z` in either case (RFC 3339 §5.6).
 * - The day must exist (no 2025-02-30, no 2026-11-31); hours 00–23, minutes and seconds 00–59.
 * - Offsets within ±23:59.
 * - A leap second (`:60`) is accepted where it can fall, at 23:59 UTC, and filed under the last
 *   microsecond of that minute (`23:59:59.999999Z`): the producer's text is kept as sent, and the
 *   store orders the event after every other event of that second and before the next day.
 * - Fractions beyond microseconds are truncated for ordering and filtering (PostgreSQL keeps µs).
 * - The instant, in UTC, must fall in years 0001–9999, the range every layer can name.
 */

export interface Timestamp {
  /** Milliseconds since the Unix epoch (whole part of the instant). */
  epochMs: number;
  /** Microseconds within that millisecond, 0–999. */
  micros: number;
  /** `YYYY-MM-DDThh:mm:ss.ffffffZ`, in UTC: what the store and `Date.parse` are given. */
  normalized: string;
}

export type TimestampResult = { ok: true; value: Timestamp } | { ok: false; reason: string };

const pattern =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

const months = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

const msPerDay = 86_400_000;

/** The earliest and latest instants every layer can name: 0001-01-01T00:00:00Z to the end of 9999. */
export const earliestMs = daysFromCivil(1, 1, 1) * msPerDay;
export const endMs = daysFromCivil(10_000, 1, 1) * msPerDay;

const isLeapYear = (year: number) => year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);

export function daysInMonth(year: number, month: number): number {
  return month === 2 ? (isLeapYear(year) ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (any year, unlike `Date.UTC` for 0–99). */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

export const formatHint = 'an RFC 3339 date-time such as 2026-11-28T09:30:00Z or 2026-11-28T10:30:00.5+01:00';

/** Parses an RFC 3339 date-time under the rules above; `reason` says what to fix. */
export function parseTimestamp(text: string): TimestampResult {
  const match = pattern.exec(text);
  if (!match) return { ok: false, reason: `must be ${formatHint}` };
  const [, y, mo, d, h, mi, s, fraction = '', sign, oh, om] = match as unknown as string[];
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  let second = Number(s);
  if (month < 1 || month > 12) return { ok: false, reason: `month ${mo} does not exist (01–12)` };
  if (day < 1 || day > daysInMonth(year, month)) {
    return { ok: false, reason: `day ${d} does not exist in ${months[month - 1]} ${y}` };
  }
  if (hour > 23)
    return { ok: false, reason: `hour ${h} does not exist (00–23; midnight is 00:00 of the next day)` };
  if (minute > 59) return { ok: false, reason: `minute ${mi} does not exist (00–59)` };
  const offsetMinutes = sign === undefined ? 0 : (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om));
  if (sign !== undefined && (Number(oh) > 23 || Number(om) > 59)) {
    return { ok: false, reason: `offset ${sign}${oh}:${om} is out of range (at most ±23:59)` };
  }
  let micros = Number(fraction.slice(0, 6).padEnd(6, '0'));
  if (second === 60) {
    const utcMinuteOfDay = (((hour * 60 + minute - offsetMinutes) % 1440) + 1440) % 1440;
    if (utcMinuteOfDay !== 1439) {
      return { ok: false, reason: 'a leap second (:60) can only follow 23:59:59 UTC' };
    }
    second = 59;
    micros = 999_999;
  } else if (second > 59) {
    return { ok: false, reason: `second ${s} does not exist (00–59, or 60 for a leap second)` };
  }
  const epochMs =
    daysFromCivil(year, month, day) * msPerDay +
    ((hour * 60 + minute - offsetMinutes) * 60 + second) * 1000 +
    Math.floor(micros / 1000);
  if (epochMs < earliestMs || epochMs >= endMs) {
    return { ok: false, reason: 'must fall in years 0001–9999 once converted to UTC' };
  }
  return { ok: true, value: fromEpoch(epochMs, micros % 1000) };
}

/** The timestamp of an instant (milliseconds plus microseconds), for times ingesta makes itself. */
export function fromEpoch(epochMs: number, micros = 0): Timestamp {
  const iso = new Date(epochMs).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ for years 0001–9999
  return { epochMs, micros, normalized: `${iso.slice(0, 23)}${String(micros).padStart(3, '0')}Z` };
}

/** The first instant of the UTC month holding `date`. */
export function monthStart(date: Date): Date {
  return utcMonth(date.getUTCFullYear(), date.getUTCMonth());
}

export function addMonths(month: Date, months: number): Date {
  return utcMonth(month.getUTCFullYear(), month.getUTCMonth() + months);
}

/** The first instant of a UTC month (`monthIndex` from 0, may overflow), for any year: `Date.UTC` maps 0–99 to 1900–1999. */
export function utcMonth(year: number, monthIndex: number): Date {
  const date = new Date(0);
  date.setUTCFullYear(year, monthIndex, 1);
  return date;
}
