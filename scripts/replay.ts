/**
 * `npm run replay -- create|watch|show|cancel …`: the replay API for operators (replay/cli.ts;
 * `--help`-like usage on any mistake).
 */
import { runReplayCli } from '../replay/cli.ts';

process.exitCode = await runReplayCli(process.argv.slice(2), {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  progress: process.stdout.isTTY ? (line) => process.stdout.write(`\r${line}\x1b[K`) : undefined,
});
