/**
 * The chart's values as documentation: every leaf of values.yaml with its `# --` comment, its default
 * and its schema type. The chart tests check values.yaml, values.schema.json and the README against
 * it; `node test/chart/support/values-docs.ts --write` regenerates the README's values table.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isScalar, type Pair, parseDocument, type YAMLMap } from 'yaml';
import { chartDir } from './chart.ts';

export interface JsonSchema {
  type?: string | string[];
  description?: string;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  required?: string[];
  [keyword: string]: unknown;
}

export interface ValueDoc {
  /** Dotted path, e.g. `api.autoscaling.enabled`. */
  path: string;
  defaultValue: unknown;
  /** The `# --` comment above the key, without the marker; undefined when missing. */
  description: string | undefined;
  schema: JsonSchema | undefined;
}

export const valuesPath = join(chartDir, 'values.yaml');
export const schemaPath = join(chartDir, 'values.schema.json');
export const readmePath = join(chartDir, 'README.md');

export function loadSchema(): JsonSchema {
  return JSON.parse(readFileSync(schemaPath, 'utf8')) as JsonSchema;
}

/** The `# -- …` paragraph closest above a key (the first key of a map carries it on the map). */
function descriptionOf(pair: Pair, map: YAMLMap, index: number): string | undefined {
  const key = pair.key as { commentBefore?: string | null };
  const comment = key.commentBefore ?? (index === 0 ? map.commentBefore : undefined);
  if (!comment) return undefined;
  const paragraph = comment.split('\n\n').at(-1)!;
  const lines = paragraph.split('\n').map((line) => line.trim());
  if (!lines[0]?.startsWith('-- ')) return undefined;
  return [lines[0].slice(3), ...lines.slice(1)].join(' ').trim();
}

/**
 * Leaves of values.yaml: values whose schema is not an object with named properties. Maps the user
 * fills (labels, annotations, podLabels) are leaves even when they have default entries.
 */
export function valueDocs(): ValueDoc[] {
  const document = parseDocument(readFileSync(valuesPath, 'utf8'));
  const schema = loadSchema();
  const docs: ValueDoc[] = [];
  const walk = (map: YAMLMap, prefix: string, mapSchema: JsonSchema | undefined) => {
    map.items.forEach((pair, index) => {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const path = prefix ? `${prefix}.${key}` : key;
      const valueSchema = mapSchema?.properties?.[key];
      if (isMap(pair.value) && valueSchema?.properties) {
        walk(pair.value, path, valueSchema);
        return;
      }
      const node = pair.value as { toJSON?: () => unknown } | null;
      docs.push({
        path,
        defaultValue: node && typeof node.toJSON === 'function' ? node.toJSON() : node,
        description: descriptionOf(pair, map, index),
        schema: valueSchema,
      });
    });
  };
  walk(document.contents as YAMLMap, '', schema);
  return docs;
}

export function formatDefault(value: unknown): string {
  return `\`${JSON.stringify(value)}\``;
}

function formatType(schema: JsonSchema | undefined): string {
  const type = schema?.type;
  return Array.isArray(type) ? type.join(' \\| ') : (type ?? '');
}

/** A Markdown table with padded columns, as the repository's formatter (Biome) lays tables out. */
export function valuesTable(docs = valueDocs()): string {
  const rows = docs.map((doc) => [
    `\`${doc.path}\``,
    formatType(doc.schema),
    formatDefault(doc.defaultValue),
    (doc.description ?? '').replaceAll('|', '\\|'),
  ]);
  const header = ['Key', 'Type', 'Default', 'Description'];
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]!.length)),
  );
  const line = (cells: string[]) =>
    `| ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`;
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}

/** The cells of a Markdown table row, trimmed. */
export function tableCells(row: string): string[] {
  return row
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split(/(?<!\\)\|/)
    .map((cell) => cell.trim());
}

const startMarker = '<!-- values:start -->';
const endMarker = '<!-- values:end -->';

/** Replaces the table between the README's values markers. */
export function writeReadmeTable(): void {
  const readme = readFileSync(readmePath, 'utf8');
  const start = readme.indexOf(startMarker);
  const end = readme.indexOf(endMarker);
  if (start < 0 || end < start) throw new Error(`README has no ${startMarker} … ${endMarker} section`);
  const updated = `${readme.slice(0, start + startMarker.length)}\n${valuesTable()}\n${readme.slice(end)}`;
  writeFileSync(readmePath, updated);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--write')) writeReadmeTable();
  else process.stdout.write(`${valuesTable()}\n`);
}
