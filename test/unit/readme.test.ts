import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { configVariables } from '../../platform/config.ts';

test('every configuration variable the app reads is documented in the README', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const missing = Object.keys(configVariables).filter((name) => !readme.includes(`\`${name}\``));
  assert.deepEqual(missing, []);
});
