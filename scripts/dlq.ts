/**
 * `npm run dlq -- list|redrive [--max N] [--show-body] [--json]`: inspect the dead-letter queue and
 * move messages back to the main queue. The logic lives in consumer/dlq/; `--help` explains it.
 * With no queue configured it finds a running `npm start` on this machine by its state file.
 */
import { runDlqCli } from '../consumer/dlq/cli.ts';
import { findRunningLocalStacks, localStackEnv } from '../local/state-file.ts';

const code = await runDlqCli(
  process.argv.slice(2),
  process.env,
  {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  },
  {
    findLocalStack: () => {
      const [stack, ...others] = findRunningLocalStacks();
      if (!stack) return undefined;
      const more = others.length > 0 ? ` (the newest of ${others.length + 1})` : '';
      return {
        env: localStackEnv(stack),
        description: `using the local stack of \`npm start\`${more}: pid ${stack.pid}, API ${stack.apiUrl}, DLQ ${stack.dlqUrl}`,
      };
    },
  },
);
process.exitCode = code;
