import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { repoRoot } from './support/workflows.ts';

/** CODEOWNERS rules as (pattern, owners), comments and blank lines dropped. */
const rules = readFileSync(join(repoRoot, '.github', 'CODEOWNERS'), 'utf8')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'))
  .map((line) => {
    const [pattern = '', ...owners] = line.split(/\s+/);
    return { pattern, owners };
  });

describe('CODEOWNERS', () => {
  test('when the workflows, chart, deploy values, infra or image recipe change, then an owner must review', () => {
    for (const path of ['/.github/', '/charts/', '/deploy/', '/infra/', '/Dockerfile']) {
      const rule = rules.findLast((candidate) => candidate.pattern === path);
      assert.ok(rule, `no owner for ${path}`);
      assert.ok(rule.owners.length > 0, `${path} names no owner`);
      for (const owner of rule.owners) assert.match(owner, /^@[\w.-]+(\/[\w.-]+)?$/, owner);
    }
  });
});
