/**
 * Events are kept as the JSON text their producer sent, not as a parsed and re-serialized value:
 * `JSON.parse` loses integers beyond 2^53 and `1e400`, objects reorder integer-like keys, jsonb
 * reorders every key. This module reads that text once, after `JSON.parse` has proven it valid, and
 * gives each event its own text with the insignificant whitespace removed.
 *
 * One change is made inside strings: U+FFFE and U+FFFF, which SQS refuses in a message body, are
 * written as the JSON escapes `\ufffe` and `\uffff`; the text means exactly the same JSON.
 */

/** One JSON value of a document: its text without insignificant whitespace, and its shape. */
export interface ScannedValue {
  text: string;
  /** Member names of the value when it is an object, in order, duplicates included. */
  names: string[];
  /** Nesting depth: 0 for a scalar, 1 for an object or array of scalars. */
  depth: number;
  /** Most members of any one object or array inside the value (the value itself included). */
  width: number;
}

// Strings (with their escapes), structural characters, and literals (numbers, true, false, null).
export const tokenPattern = /"[^"\\]*(?:\\.[^"\\]*)*"|[[\]{},:]|[^\s"[\]{},:]+/g;
const refusedBySqs = /[\uFFFE\uFFFF]/g;
const escapeForSqs = (char: string) => (char === '\uFFFE' ? '\\ufffe' : '\\uffff');

/**
 * Scans a document `JSON.parse` accepted: the top-level value itself, or with `elements` the
 * values of the top-level array, each on its own.
 */
export function scanJson(text: string, { elements = false } = {}): ScannedValue[] {
  const values: ScannedValue[] = [];
  const base = elements ? 1 : 0; // depth at which the values scanned sit
  let parts: string[] = [];
  let names: string[] = [];
  let depth = 0;
  let maxDepth = base;
  // Commas seen in each open container, innermost last: its members are one more.
  const commas: number[] = [];
  let width = 0;
  let inObject = false; // the value scanned is an object
  let expectName = false;
  const finish = () => {
    if (parts.length > 0) values.push({ text: parts.join(''), names, depth: maxDepth - base, width });
    parts = [];
    names = [];
    maxDepth = base;
    width = 0;
    inObject = false;
  };
  tokenPattern.lastIndex = 0;
  for (let match = tokenPattern.exec(text); match !== null; match = tokenPattern.exec(text)) {
    let token = match[0];
    const first = token.charCodeAt(0);
    if (elements && depth <= 1 && (depth === 0 || token === ',' || token === ']')) {
      if (depth === 0)
        depth = 1; // the opening [
      else {
        finish();
        if (token === ']') depth = 0;
      }
      continue;
    }
    if (first === 0x7b || first === 0x5b) {
      // { or [
      if (depth === base) {
        inObject = first === 0x7b;
        expectName = inObject;
      }
      depth++;
      if (depth > maxDepth) maxDepth = depth;
      commas.push(0);
      if (width === 0) width = 1;
    } else if (first === 0x7d || first === 0x5d) {
      depth--;
      commas.pop();
    } else if (first === 0x22) {
      if (expectName) {
        names.push(JSON.parse(token) as string);
        expectName = false;
      }
      if (token.includes('\uFFFE') || token.includes('\uFFFF'))
        token = token.replace(refusedBySqs, escapeForSqs);
    } else if (first === 0x2c) {
      const top = commas.length - 1;
      const seen = (commas[top] ?? 0) + 1;
      commas[top] = seen;
      const members = seen + 1;
      if (members > width) width = members;
      if (inObject && depth === base + 1) expectName = true;
    }
    parts.push(token);
  }
  if (!elements) finish();
  return values;
}
