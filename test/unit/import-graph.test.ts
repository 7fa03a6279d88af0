import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

/**
 * The module map as a rule: each folder may import only the folders below it, and no module imports
 * itself back through others. A change that breaks it fails here, naming the edge.
 *
 *   platform  ←  ingest  ←  db  ←  replay  ←  api, consumer  ←  local, scripts
 */
const allowed: Record<string, string[]> = {
  platform: ['platform'],
  ingest: ['platform', 'ingest'],
  db: ['platform', 'ingest', 'db'],
  replay: ['platform', 'ingest', 'db', 'replay'],
  api: ['platform', 'ingest', 'db', 'replay', 'api'],
  consumer: ['platform', 'ingest', 'db', 'replay', 'consumer'],
  local: ['platform', 'ingest', 'db', 'replay', 'api', 'consumer', 'local'],
  scripts: ['platform', 'ingest', 'db', 'replay', 'api', 'consumer', 'local', 'scripts'],
};

const root = resolve(import.meta.dirname, '../..');

function sources(folder: string): string[] {
  return readdirSync(join(root, folder), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => join(folder, f));
}

/** Relative imports of a module, as paths from the repository root (type-only imports included). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'(\.{1,2}\/[^']+)'/g)].map((m) =>
    relative(root, resolve(join(root, dirname(file)), m[1] as string)),
  );
}

const graph = new Map<string, string[]>();
for (const folder of Object.keys(allowed))
  for (const file of sources(folder)) graph.set(file, importsOf(file));

test('when a module imports another, then only from its own folder or one below it', () => {
  const upward = [...graph].flatMap(([file, imports]) => {
    const from = file.split('/')[0] as string;
    return imports
      .filter((target) => !(allowed[from] ?? []).includes(target.split('/')[0] as string))
      .map((target) => `${file} → ${target}`);
  });
  assert.deepEqual(upward, []);
});

test('when imports are followed, then no module reaches itself again', () => {
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const walk = (file: string, path: string[]) => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'open') {
      cycles.push([...path.slice(path.indexOf(file)), file].join(' → '));
      return;
    }
    state.set(file, 'open');
    for (const next of graph.get(file) ?? []) if (graph.has(next)) walk(next, [...path, file]);
    state.set(file, 'done');
  };
  for (const file of graph.keys()) walk(file, []);
  assert.deepEqual(cycles, []);
  assert.ok(graph.size > 50, `the walk saw the sources (${graph.size} modules)`);
});
