/**
 * `npm run dlq -- list|redrive [--max N] [--show-body] [--json]`: inspect the dead-letter queue and
 * move messages back to the main queue. The logic lives in consumer/dlq/; `--help` explains it.
 */
import { runDlqCli } from '../consumer/dlq/cli.ts';

const code = await runDlqCli(process.argv.slice(2), process.env, {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
});
process.exitCode = code;
