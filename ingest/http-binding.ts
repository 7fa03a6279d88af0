import type { IncomingHttpHeaders } from 'node:http';
import { type Problem, type ReadOptions, readEventText } from './contract.ts';
import { type ScannedValue, scanJson, tokenPattern } from './json-text.ts';

/**
 * The CloudEvents HTTP protocol binding's binary content mode (1.0.2, §3.1): attributes in `ce-*`
 * headers, the body as `data`, `Content-Type` as `datacontenttype`. A binary-mode request becomes
 * the event's structured JSON text here, and from then on is an event like any other: the same
 * acceptance contract, the same message, the same row. Reading back in binary mode reverses it.
 */

const prefix = 'ce-';

/** Whether a request is in binary mode: exactly when it carries `ce-specversion`. */
export const isBinaryMode = (headers: IncomingHttpHeaders) => headers['ce-specversion'] !== undefined;

/** The structured and batched media types; anything else with `ce-*` headers is binary mode. */
const structuredType = /^application\/cloudevents(?:-batch)?\+json\b/i;

/** Names of the `ce-*` headers of a request, if any. */
export const ceHeaderNames = (headers: IncomingHttpHeaders) =>
  Object.keys(headers).filter((n) => n.startsWith(prefix));

type MediaKind = 'json' | 'text' | 'bytes';

/**
 * How `data` of a media type is kept: JSON as JSON, text as a string, anything else as bytes
 * (`data_base64`). A charset parameter other than UTF-8 (or US-ASCII) makes text bytes, so nothing
 * is decoded wrongly.
 */
export function mediaKind(contentType: string | undefined): MediaKind {
  if (contentType === undefined) return 'bytes';
  const [essence = '', ...parameters] = contentType.toLowerCase().split(';');
  const type = essence.trim();
  const charset = parameters.map((p) => p.trim()).find((p) => p.startsWith('charset='));
  const utf8 = charset === undefined || /^charset="?(?:utf-8|us-ascii)"?$/.test(charset);
  if (/^application\/(?:[\w.+-]+\+)?json$/.test(type) || type === 'text/json') return utf8 ? 'json' : 'bytes';
  if (type.startsWith('text/') || /^application\/(?:[\w.+-]+\+)?xml$/.test(type))
    return utf8 ? 'text' : 'bytes';
  return 'bytes';
}

/**
 * Decoding of a header value (§3.1.3.2): a double-quoted value unquoted first (backslash escapes
 * included, for senders of earlier versions of the binding), then one round of percent-decoding.
 * A run of `%XX` escapes that is not UTF-8 (an overlong `%C0%A0`, say) is refused; a `%` that
 * starts no escape is kept as it is, since senders that do not encode (the JavaScript SDK's
 * `HTTP.binary` among them) send `100%` as it is.
 */
function decodeHeaderValue(value: string): string | undefined {
  let unquoted = value;
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    unquoted = value.slice(1, -1).replace(/\\(.)/g, '$1');
  }
  if (!unquoted.includes('%')) return unquoted;
  let valid = true;
  const decoded = unquoted.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      valid = false;
      return run;
    }
  });
  return valid ? decoded : undefined;
}

/** The `datacontenttype` of an event's text, if it has one. */
export function dataContentTypeOf(text: string): string | undefined {
  const value = (JSON.parse(text) as { datacontenttype?: unknown }).datacontenttype;
  return typeof value === 'string' ? value : undefined;
}

/**
 * Percent-encoding of a header value (§3.1.3.2): space, `"`, `%` and everything outside printable
 * ASCII, as UTF-8.
 */
export function encodeHeaderValue(value: string): string {
  if (/^[\x21\x23\x24\x26-\x7E]*$/.test(value)) return value;
  let encoded = '';
  for (const char of value) {
    const code = char.codePointAt(0) as number;
    if (code >= 0x21 && code <= 0x7e && char !== '"' && char !== '%') encoded += char;
    else
      for (const byte of Buffer.from(char)) encoded += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return encoded;
}

export type BinaryVerdict = { ok: true; text: string } | { ok: false; problems: Problem[]; status?: 415 };

/**
 * The structured JSON text of a binary-mode request. Attributes come from the `ce-*` headers in
 * the order sent, `datacontenttype` from `Content-Type`, and `data` (or `data_base64`) from the body.
 */
export function binaryToStructured(
  headers: IncomingHttpHeaders,
  body: Buffer | string | undefined,
): BinaryVerdict {
  const contentType = headers['content-type'];
  if (contentType !== undefined && structuredType.test(contentType)) {
    return {
      ok: false,
      problems: [
        {
          path: '/headers/content-type',
          message: `ce-* headers make this a binary-mode request, but ${contentType} is a structured content type: send the attributes either in ce-* headers with the data as the body, or in the JSON body without ce-* headers`,
        },
      ],
    };
  }
  const members: string[] = [];
  const problems: Problem[] = [];
  for (const name of ceHeaderNames(headers)) {
    const raw = headers[name];
    const attribute = name.slice(prefix.length);
    const path = `/headers/${name}`;
    if (Array.isArray(raw)) {
      problems.push({ path, message: 'appears more than once' });
      continue;
    }
    if (attribute === 'datacontenttype' || attribute === 'data' || attribute === 'data_base64') {
      problems.push({
        path,
        message: `is not a binary-mode header: ${attribute === 'datacontenttype' ? 'Content-Type carries datacontenttype' : 'the body carries the data'}`,
      });
      continue;
    }
    const value = decodeHeaderValue(raw ?? '');
    if (value === undefined) {
      problems.push({
        path,
        message: 'has a "%" not followed by a UTF-8 sequence of %XX escapes: write a literal % as %25',
      });
      continue;
    }
    members.push(`${JSON.stringify(attribute)}:${JSON.stringify(value)}`);
  }
  if (problems.length > 0) return { ok: false, problems };
  if (contentType !== undefined) members.push(`"datacontenttype":${JSON.stringify(contentType)}`);
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  if (bytes !== undefined && bytes.length > 0) {
    const kind = mediaKind(contentType);
    if (kind === 'json') {
      const text = bytes.toString('utf8');
      try {
        JSON.parse(text);
      } catch {
        return {
          ok: false,
          problems: [{ path: '/body', message: `is not valid JSON, though Content-Type is ${contentType}` }],
        };
      }
      members.push(`"data":${text}`);
    } else if (kind === 'text') {
      const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
      try {
        members.push(`"data":${JSON.stringify(text.decode(bytes))}`);
      } catch {
        return {
          ok: false,
          problems: [
            {
              path: '/body',
              message: `is not UTF-8, though Content-Type is ${contentType}: declare its charset or send it as application/octet-stream`,
            },
          ],
        };
      }
    } else {
      members.push(`"data_base64":${JSON.stringify(bytes.toString('base64'))}`);
    }
  }
  return { ok: true, text: `{${members.join(',')}}` };
}

/** One member of the top-level object of an event's text, its value as JSON text. */
function topLevelMembers(text: string): Map<string, string> {
  const members = new Map<string, string>();
  const value = JSON.parse(text) as Record<string, unknown>;
  // The raw text of `data` keeps big integers and key order; the attributes are plain values.
  const [scanned] = scanJson(text) as [ScannedValue];
  for (const name of scanned.names) {
    members.set(name, name === 'data' ? dataText(text) : JSON.stringify(value[name]));
  }
  return members;
}

/** The JSON text of the `data` member of an event's text (whitespace already removed). */
function dataText(text: string): string {
  const pattern = new RegExp(tokenPattern.source, 'g');
  let depth = 0;
  let start = -1;
  let expectName = true;
  let isData = false;
  for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
    const token = match[0];
    if (start >= 0 && depth === 1 && (token === ',' || token === '}')) return text.slice(start, match.index);
    if (token === '{' || token === '[') depth++;
    else if (token === '}' || token === ']') depth--;
    else if (depth === 1 && token === ',') expectName = true;
    else if (depth === 1 && expectName && token.startsWith('"')) {
      isData = token === '"data"';
      expectName = false;
    } else if (depth === 1 && token === ':' && isData) start = match.index + 1;
  }
  return 'null';
}

/** A stored event in binary mode: `ce-*` headers, `Content-Type`, and the data as the body. */
export function structuredToBinary(text: string): { headers: Record<string, string>; body: Buffer } {
  const members = topLevelMembers(text);
  const headers: Record<string, string> = {};
  for (const [name, json] of members) {
    if (name === 'data' || name === 'data_base64' || name === 'datacontenttype') continue;
    const value = JSON.parse(json) as unknown;
    headers[`${prefix}${name}`] = encodeHeaderValue(
      typeof value === 'string' ? value : JSON.stringify(value),
    );
  }
  const contentType = members.has('datacontenttype')
    ? (JSON.parse(members.get('datacontenttype') as string) as string)
    : undefined;
  if (contentType !== undefined) headers['content-type'] = contentType;
  let body = Buffer.alloc(0);
  const data = members.get('data');
  const base64 = members.get('data_base64');
  if (base64 !== undefined) body = Buffer.from(JSON.parse(base64) as string, 'base64');
  else if (data !== undefined) {
    // JSON data as JSON text; a string under a non-JSON type is the text itself.
    const kind = mediaKind(contentType);
    const value = kind === 'json' || contentType === undefined ? undefined : (JSON.parse(data) as unknown);
    body = Buffer.from(typeof value === 'string' ? value : data);
    if (contentType === undefined) headers['content-type'] = 'application/json';
  }
  return { headers, body };
}

/** Checks a binary-mode request through the acceptance contract, with problems named by header. */
export function readBinaryRequest(
  headers: IncomingHttpHeaders,
  body: Buffer | string | undefined,
  options: ReadOptions = {},
) {
  const structured = binaryToStructured(headers, body);
  if (!structured.ok) return { ok: false as const, problems: structured.problems, tooLarge: false };
  const verdict = readEventText(structured.text, options);
  if (verdict.ok) {
    const warnings = verdict.warnings.map((w) => ({ ...w, path: `/headers/ce-${w.path.slice(1)}` }));
    return { ...verdict, warnings };
  }
  if (verdict.malformed)
    return { ok: false as const, problems: [{ path: '/body', message: verdict.malformed }], tooLarge: false };
  const problems = verdict.problems.map((p) => {
    const attribute = p.path.slice(1).split('/')[0] ?? '';
    const path =
      attribute === ''
        ? ''
        : attribute === 'data' || attribute === 'data_base64'
          ? '/body'
          : attribute === 'datacontenttype'
            ? '/headers/content-type'
            : `/headers/ce-${attribute}`;
    return { path: path + p.path.slice(1 + attribute.length), message: p.message };
  });
  return { ok: false as const, problems, tooLarge: verdict.tooLarge };
}
