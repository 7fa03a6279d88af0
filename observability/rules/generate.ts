/** Writes charts/ingesta/files/prometheus-rules.yaml from the rule sources: `node observability/rules/generate.ts`. */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderRulesYaml, rulesFilePath } from './rules.ts';

export { renderRulesYaml, rulesFile, rulesFilePath } from './rules.ts';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

if (import.meta.main) {
  writeFileSync(join(repoRoot, rulesFilePath), renderRulesYaml());
  console.warn(`wrote ${rulesFilePath}`);
}
