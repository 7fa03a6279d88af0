import { fullFormats } from 'ajv-formats/dist/formats.js';
import { type ScannedValue, scanJson } from './json-text.ts';
import { outsideWindow, type TimeWindow } from './time-window.ts';
import { parseTimestamp, type Timestamp } from './timestamp.ts';

/**
 * The acceptance contract: what ingesta accepts is exactly what it can store and give back. The API
 * answers 202 only for events this module accepts, and the consumer reads every message through the
 * same module, so the two cannot drift. The rules are CloudEvents 1.0 (core spec and JSON format)
 * made precise where storage needs it; docs/architecture.md lists them.
 *
 * An accepted event keeps the JSON text its producer sent (./json-text.ts): attributes and `data`
 * come back as sent, with big numbers, key order and `null` intact.
 */

/** Largest event, serialized: SNS and SQS take 256 KiB per message, attributes included. */
export const maxEventBytes = 200 * 1024;
/** Most events in one batched-mode request. */
export const maxBatchEvents = 100;
/** Deepest nesting of an event (the event object is level 1, an object in `data` level 2…). */
export const maxEventDepth = 100;
/** Most members of one object or array in an event: what a reader may walk in one step. */
export const maxEventWidth = 10_000;

/** Longest value of each string attribute, in Unicode code points. */
export const attributeMaxLength = {
  id: 256,
  source: 1024,
  type: 256,
  subject: 1024,
  datacontenttype: 256,
  dataschema: 1024,
  extension: 1024,
} as const;

export interface AcceptedEvent {
  /** The event's JSON text as sent, without insignificant whitespace. */
  text: string;
  id: string;
  source: string;
  type: string;
  subject?: string;
  /** The producer's `time`; absent when the producer sent none (the receipt time is used). */
  time?: Timestamp;
}

/** One reason an event is refused: the JSON Pointer of the attribute and what to change. */
export interface Problem {
  path: string;
  message: string;
}

export type Verdict =
  | { ok: true; event: AcceptedEvent /** What is accepted but advised against. */; warnings: Problem[] }
  | { ok: false; problems: Problem[] /** Only the size is wrong. */; tooLarge: boolean };

const extensionName = /^[a-z0-9]+$/;
const required = new Set(['specversion', 'id', 'source', 'type']);
// Control characters, noncharacters of the BMP and surrogates: the rare strings worth a closer look.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for.
const suspicious = /[\x00-\x1F\x7F-\x9F\uFDD0-\uFDEF\uFFFE\uFFFF\uD800-\uDFFF]/;
const mediaType = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:[ \t]*;.*)?$/s;
const base64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const uriCharacter = /[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=]/;
const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:/;
const isUriReference = fullFormats['uri-reference'] as RegExp;
const isUri = fullFormats.uri as (value: string) => boolean;

const codePoint = (value: number) => `U+${value.toString(16).toUpperCase().padStart(4, '0')}`;

/**
 * Why `value` is not a CloudEvents String: the spec disallows control characters (U+0000–U+001F,
 * U+007F–U+009F), noncharacters and surrogates not used in pairs.
 */
function stringProblem(value: string): string | undefined {
  if (!suspicious.test(value)) return undefined;
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    let point = unit;
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return `contains an unpaired surrogate (${codePoint(unit)})`;
      point = (unit - 0xd800) * 0x400 + (next - 0xdc00) + 0x10000;
      i++;
    } else if (unit >= 0xdc00 && unit <= 0xdfff) {
      return `contains an unpaired surrogate (${codePoint(unit)})`;
    }
    if (point <= 0x1f || (point >= 0x7f && point <= 0x9f))
      return `contains the control character ${codePoint(point)}`;
    if ((point >= 0xfdd0 && point <= 0xfdef) || (point & 0xfffe) === 0xfffe) {
      return `contains the noncharacter ${codePoint(point)}`;
    }
  }
  return undefined;
}

function codePointLength(value: string): number {
  let length = value.length;
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      length--;
      i++;
    }
  }
  return length;
}

/** Why `value` is not an RFC 3986 URI reference (or, with `absolute`, a URI with a scheme). */
function uriProblem(value: string, absolute: boolean): string | undefined {
  for (let i = 0; i < value.length; i++) {
    const char = value[i] as string;
    if (char === '%') {
      if (!/^[0-9A-Fa-f]{2}$/.test(value.slice(i + 1, i + 3))) {
        return `has a "%" at position ${i} not followed by two hex digits: write a literal % as %25`;
      }
      i += 2;
    } else if (!uriCharacter.test(char)) {
      const whole = String.fromCodePoint(value.codePointAt(i) as number);
      const encoded = [...new TextEncoder().encode(whole)]
        .map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`)
        .join('');
      return `contains ${JSON.stringify(whole)}, which a URI cannot hold: percent-encode it as ${encoded}`;
    }
  }
  const hasScheme = scheme.test(value);
  if (absolute && !hasScheme)
    return 'must be an absolute URI with a scheme, such as https://example.com/schema';
  const firstSegment = value.split(/[/?#]/, 1)[0] as string;
  if (!hasScheme && firstSegment.includes(':')) {
    return `has a ":" in its first segment without being a scheme: write it as ./${firstSegment}`;
  }
  if (!(absolute ? isUri(value) : isUriReference.test(value))) {
    return absolute ? 'is not a valid URI (RFC 3986)' : 'is not a valid URI reference (RFC 3986)';
  }
  return undefined;
}

type Check = (value: unknown) => string | undefined;

function stringAttribute(maxLength: number, more?: (value: string) => string | undefined): Check {
  return (value) => {
    if (typeof value !== 'string') return value === null ? 'must be a string, not null' : 'must be a string';
    if (value.length === 0) return 'must not be empty';
    if (value.length > maxLength && codePointLength(value) > maxLength) {
      return `must be at most ${maxLength} characters`;
    }
    return stringProblem(value) ?? more?.(value);
  };
}

const attributeChecks: Record<string, Check> = {
  specversion: (value) =>
    value === '1.0' ? undefined : 'must be "1.0", the CloudEvents version ingesta accepts',
  id: stringAttribute(attributeMaxLength.id),
  source: stringAttribute(attributeMaxLength.source, (v) => uriProblem(v, false)),
  type: stringAttribute(attributeMaxLength.type),
  subject: stringAttribute(attributeMaxLength.subject),
  datacontenttype: stringAttribute(attributeMaxLength.datacontenttype, (v) =>
    mediaType.test(v) ? undefined : 'must be a media type such as application/json (RFC 2046)',
  ),
  dataschema: stringAttribute(attributeMaxLength.dataschema, (v) => uriProblem(v, true)),
  time: (value) => {
    if (typeof value !== 'string') return 'must be a string holding an RFC 3339 date-time';
    const parsed = parseTimestamp(value);
    return parsed.ok ? undefined : parsed.reason;
  },
  data_base64: (value) =>
    typeof value === 'string' && base64.test(value)
      ? undefined
      : 'must be a base64 string (RFC 4648, with padding)',
};

const checkExtensionValue = (value: unknown): string | undefined => {
  if (typeof value === 'string') {
    if (
      value.length > attributeMaxLength.extension &&
      codePointLength(value) > attributeMaxLength.extension
    ) {
      return `must be at most ${attributeMaxLength.extension} characters`;
    }
    return stringProblem(value);
  }
  if (typeof value === 'boolean') return undefined;
  if (typeof value === 'number' && Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31) {
    return undefined;
  }
  if (value === null) return 'must not be null: leave the attribute out instead';
  return 'must be a string, a boolean or an integer from -2147483648 to 2147483647 (the CloudEvents types)';
};

/** What the contract needs besides the text. */
export interface ReadOptions {
  /** Event times accepted (./time-window.ts); without it, any time in years 0001–9999. */
  window?: TimeWindow | undefined;
}

/** Applies the contract to one event: `value` parsed by `JSON.parse`, `scanned` its text. */
export function checkEvent(value: unknown, scanned: ScannedValue, { window }: ReadOptions = {}): Verdict {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {
      ok: false,
      problems: [{ path: '', message: 'an event must be a JSON object' }],
      tooLarge: false,
    };
  }
  const event = value as Record<string, unknown>;
  if (scanned.names.length === 0) {
    const message =
      'is empty: send a CloudEvent as JSON with at least specversion "1.0", id, source and type';
    return { ok: false, problems: [{ path: '', message }], tooLarge: false };
  }
  const problems: Problem[] = [];
  const missing = [...required].filter((name) => !Object.hasOwn(event, name));
  if (missing.length > 0) {
    problems.push({
      path: '',
      message: `missing required attribute${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`,
    });
  }
  const seen = new Set<string>();
  for (const name of scanned.names) {
    if (seen.has(name)) problems.push({ path: `/${name}`, message: 'appears more than once' });
    seen.add(name);
  }
  const warnings: Problem[] = [];
  for (const name of seen) {
    const attribute = event[name];
    let problem: string | undefined;
    const optional = !required.has(name);
    if (name.length > 20 && extensionName.test(name)) {
      warnings.push({
        path: `/${name}`,
        message: 'is longer than 20 characters, which CloudEvents advises against',
      });
    }
    // Own properties only: a member named `constructor` or `__proto__` is an attribute name, not a lookup.
    const check = Object.hasOwn(attributeChecks, name) ? attributeChecks[name] : undefined;
    // JSON format §2.2: a null attribute is unset. `data: null` is data, not an attribute.
    if (attribute === null && optional && name !== 'data' && (check || extensionName.test(name))) continue;
    if (check) problem = check(attribute);
    else if (name === 'data') problem = undefined;
    else if (!extensionName.test(name)) {
      problem = 'is not a valid attribute name: extension names are lower-case letters a-z and digits 0-9';
    } else problem = checkExtensionValue(attribute);
    if (problem) problems.push({ path: `/${escapePointer(name)}`, message: problem });
  }
  if (seen.has('data') && event.data_base64 !== undefined && event.data_base64 !== null) {
    problems.push({ path: '/data_base64', message: 'an event carries data or data_base64, not both' });
  }
  if (scanned.depth > maxEventDepth) {
    problems.push({ path: '/data', message: `nests ${scanned.depth} levels deep; at most ${maxEventDepth}` });
  }
  if (scanned.width > maxEventWidth) {
    problems.push({
      path: '/data',
      message: `has an object or array of ${scanned.width} members; at most ${maxEventWidth}`,
    });
  }
  const bytes = Buffer.byteLength(scanned.text);
  const tooLarge = bytes > maxEventBytes;
  if (tooLarge) {
    problems.push({
      path: '',
      message: `the event is ${bytes} bytes serialized; at most ${maxEventBytes} (200 KiB)`,
    });
  }
  if (problems.length > 0) return { ok: false, problems, tooLarge: tooLarge && problems.length === 1 };
  const accepted: AcceptedEvent = {
    text: scanned.text,
    id: event.id as string,
    source: event.source as string,
    type: event.type as string,
  };
  if (typeof event.subject === 'string') accepted.subject = event.subject;
  if (typeof event.time === 'string') {
    const time = parseTimestamp(event.time);
    if (time.ok) accepted.time = time.value;
    const outside = time.ok && window ? outsideWindow(window, time.value.epochMs) : undefined;
    if (outside) return { ok: false, problems: [{ path: '/time', message: outside }], tooLarge: false };
  }
  return { ok: true, event: accepted, warnings };
}

const escapePointer = (name: string) => name.replaceAll('~', '~0').replaceAll('/', '~1');

/** Why a text is not JSON, without quoting it: reasons are logged and returned, payloads never. */
export function jsonSyntaxError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const position = /at position (\d+)/.exec(message)?.[1];
  const kind = /^Unexpected end of JSON input/.test(message)
    ? 'unexpected end of input'
    : /^Unexpected token|Unexpected non-whitespace/.test(message)
      ? 'unexpected token'
      : 'invalid JSON';
  return position === undefined ? kind : `${kind} at position ${position}`;
}

export type BodyVerdict =
  | { ok: true; events: AcceptedEvent[]; warnings: Problem[] }
  | { ok: false; malformed?: string; problems: Problem[]; tooLarge: boolean };

/**
 * Reads a structured-mode (`batch: false`) or batched-mode request body. Problems are named by
 * JSON Pointer under `/body` (`/body/3/time` for the fourth event of a batch).
 */
export function readEventsBody(
  text: string,
  { batch, window }: { batch: boolean } & ReadOptions,
): BodyVerdict {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return {
      ok: false,
      malformed: `the body is not valid JSON: ${jsonSyntaxError(err)}`,
      problems: [],
      tooLarge: false,
    };
  }
  if (batch) {
    if (!Array.isArray(value)) {
      return {
        ok: false,
        problems: [{ path: '/body', message: 'a batch must be a JSON array of events' }],
        tooLarge: false,
      };
    }
    // The JSON batch format allows an empty batch (HTTP binding §3.3.2): nothing to publish.
    if (value.length > maxBatchEvents) {
      const message = `a batch holds at most ${maxBatchEvents} events; this one has ${value.length}`;
      return { ok: false, problems: [{ path: '/body', message }], tooLarge: false };
    }
  }
  const values = batch ? (value as unknown[]) : [value];
  const scanned = scanJson(text, { elements: batch });
  const events: AcceptedEvent[] = [];
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  let allTooLarge = true;
  values.forEach((element, index) => {
    const verdict = checkEvent(element, scanned[index] as ScannedValue, { window });
    const prefix = batch ? `/body/${index}` : '/body';
    if (verdict.ok) {
      events.push(verdict.event);
      for (const w of verdict.warnings) warnings.push({ path: prefix + w.path, message: w.message });
    } else {
      for (const p of verdict.problems) problems.push({ path: prefix + p.path, message: p.message });
      allTooLarge &&= verdict.tooLarge;
    }
  });
  return problems.length === 0
    ? { ok: true, events, warnings }
    : { ok: false, problems, tooLarge: allTooLarge };
}

/** Reads one event's text, as the consumer does with a message body; problems are named from the event. */
export function readEventText(
  text: string,
  options: ReadOptions = {},
):
  | { ok: true; event: AcceptedEvent; warnings: Problem[] }
  | { ok: false; malformed?: string; problems: Problem[]; tooLarge: boolean } {
  const verdict = readEventsBody(text, { batch: false, ...options });
  if (verdict.ok) return { ok: true, event: verdict.events[0] as AcceptedEvent, warnings: verdict.warnings };
  return {
    ...verdict,
    problems: verdict.problems.map((p) => ({ ...p, path: p.path.slice('/body'.length) })),
  };
}

/** A CloudEvent as a producer writes it in structured mode. */
export interface CloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject?: string;
  time?: string;
  datacontenttype?: string;
  dataschema?: string;
  data?: unknown;
  data_base64?: string;
  /** Extension attributes. */
  [extension: string]: unknown;
}

/** The accepted form of an event given as a value (tools, tests, benchmarks); throws when refused. */
export function acceptEvent(event: CloudEvent): AcceptedEvent {
  const verdict = readEventText(JSON.stringify(event));
  if (verdict.ok) return verdict.event;
  throw new Error(
    `event refused: ${verdict.malformed ?? verdict.problems.map((p) => `${p.path} ${p.message}`).join('; ')}`,
  );
}
