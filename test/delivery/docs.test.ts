import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadCompositeActions, loadWorkflows, repoRoot } from './support/workflows.ts';

const doc = readFileSync(join(repoRoot, 'docs/delivery.md'), 'utf8');
const files = [...loadWorkflows(), ...loadCompositeActions()];

/** Names read through `${{ vars.NAME }}` or `${{ secrets.NAME }}` anywhere in the workflows. */
function referenced(context: 'vars' | 'secrets'): Set<string> {
  const names = new Set<string>();
  for (const file of files) {
    for (const match of file.text.matchAll(new RegExp(`\\b${context}\\.([A-Z][A-Z0-9_]*)`, 'g'))) {
      if (match[1] !== 'GITHUB_TOKEN') names.add(match[1] ?? '');
    }
  }
  return names;
}

describe('docs/delivery.md', () => {
  test('when someone sets up a fork, then every variable and secret the workflows read is documented', () => {
    const variables = referenced('vars');
    const secrets = referenced('secrets');
    assert.ok(variables.size >= 8 && secrets.size >= 4, 'the workflows read variables and secrets');
    for (const name of [...variables, ...secrets]) {
      assert.ok(doc.includes(`\`${name}\``), `${name} is not documented`);
    }
  });

  test('when the page is rendered, then it shows the pipeline as a Mermaid diagram through every stage', () => {
    const diagram = /```mermaid\n([\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(diagram, 'no mermaid block');
    for (const stage of [
      'ci.yml',
      'security.yml',
      'Grype',
      'helm upgrade',
      'helm test',
      'smoke test',
      'helm rollback',
    ]) {
      assert.ok(diagram.includes(stage), `the diagram leaves out ${stage}`);
    }
  });

  test('when a release goes wrong, then the page explains the automatic and the manual rollback', () => {
    assert.match(doc, /^## Rollback$/m);
    assert.match(doc, /^### Automatic$/m);
    assert.match(doc, /^### By hand$/m);
    assert.match(doc, /helm rollback ingesta <revision> --namespace ingesta/);
    for (const environment of ['staging', 'production']) assert.ok(doc.includes(`\`${environment}\``));
  });
});
