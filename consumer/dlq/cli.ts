import { parseArgs } from 'node:util';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { createSqsClient } from '../../platform/aws.ts';
import { type Config, ConfigError, loadConfig } from '../../platform/config.ts';
import {
  countMessages,
  type DeadLetter,
  listDeadLetters,
  redriveDeadLetters,
  startRedriveTask,
} from './dead-letters.ts';

export const usage = `Usage: npm run dlq -- <command> [options]

Inspect and redrive ingesta's dead-letter queue (DLQ).

Commands:
  list      One line per DLQ message: message id, rejection code, rejected-at, receives and
            reason. Payloads are not printed unless --show-body is given.
  redrive   Move messages back to the main queue for another try. Against an emulator
            (AWS_ENDPOINT_URL set), or with --max, each message is received, sent to the main
            queue without its ingesta_rejection_* attributes, then deleted from the DLQ. On AWS
            without --max, an SQS message move task (StartMessageMoveTask) moves them all.

Options:
  --max <n>      At most n messages (default: all).
  --show-body    list: print each message's body too (it may hold personal data).
  --json         list: one JSON object per message instead of the table.
  -h, --help     This text.

Configuration is the consumer's (the tool never connects to PostgreSQL):
  INGEST_QUEUE_URL, INGEST_DLQ_URL, AWS_REGION, AWS_ENDPOINT_URL (emulator only), and the usual
  AWS credential chain. With neither queue URL set, the tool uses the local stack of a running
  \`npm start\` on this machine, if there is one.
`;

const shortUsage =
  'usage: npm run dlq -- list|redrive [--max <n>] [--show-body] [--json]  (--help for details)';

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

export interface CliDeps {
  /** Builds the SQS client; tests pass their own. */
  createSqs?: (config: Config) => SQSClient;
  /**
   * The environment of a running local stack (`npm start`), used when neither queue URL is set,
   * with a line saying which stack it is. Default: none.
   */
  findLocalStack?: () => { env: Record<string, string>; description: string } | undefined;
}

class UsageError extends Error {}

interface ParsedArgs {
  command: 'list' | 'redrive' | 'help';
  max: number | undefined;
  showBody: boolean;
  json: boolean;
}

const cliOptions = {
  max: { type: 'string' },
  'show-body': { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parse(argv: string[]): ParsedArgs {
  const parsed = (() => {
    try {
      return parseArgs({ args: argv, options: cliOptions, allowPositionals: true });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  })();
  const { values, positionals } = parsed;
  if (values.help) return { command: 'help', max: undefined, showBody: false, json: false };
  const [command, ...extra] = positionals;
  if (command === undefined) throw new UsageError('a command is required: list or redrive');
  if (command !== 'list' && command !== 'redrive') throw new UsageError(`unknown command "${command}"`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  let max: number | undefined;
  if (values.max !== undefined) {
    max = Number(values.max);
    if (!/^\d+$/.test(values.max) || !Number.isSafeInteger(max) || max < 1) {
      throw new UsageError(`--max must be a whole number of at least 1, not "${values.max}"`);
    }
  }
  if (command === 'redrive' && (values['show-body'] || values.json)) {
    throw new UsageError('--show-body and --json apply to list only');
  }
  return { command, max, showBody: values['show-body'] ?? false, json: values.json ?? false };
}

const retriesExhausted = 'no rejection recorded: SQS moved it after its maximum receives (retries exhausted)';

/** The list as a table, widest columns first; the reason last, since it is the longest. */
function formatTable(letters: DeadLetter[], showBody: boolean): string[] {
  const rows = letters.map((l) => [
    l.messageId,
    l.code ?? '-',
    l.rejectedAt ?? '-',
    String(l.receiveCount),
    l.code ? (l.reason ?? '') : retriesExhausted,
  ]);
  const header = ['MESSAGE ID', 'CODE', 'REJECTED AT', 'RECEIVES', 'REASON'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const lines = [line(header)];
  for (const [i, row] of rows.entries()) {
    lines.push(line(row));
    if (showBody) lines.push(`  body: ${letters[i]?.body ?? ''}`);
  }
  return lines;
}

/**
 * The `npm run dlq` command. Resolves with the exit code: 0 done, 1 an SQS call failed, 2 bad usage
 * or configuration.
 */
export async function runDlqCli(
  argv: string[],
  env: NodeJS.ProcessEnv,
  io: CliIo,
  deps: CliDeps = {},
): Promise<number> {
  let args: ParsedArgs;
  try {
    args = parse(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err(`dlq: ${err.message}\n${shortUsage}`);
    return 2;
  }
  if (args.command === 'help') {
    io.out(usage);
    return 0;
  }
  const local = !env.INGEST_QUEUE_URL && !env.INGEST_DLQ_URL ? deps.findLocalStack?.() : undefined;
  if (local) io.err(`dlq: ${local.description}`);
  let config: Config;
  try {
    config = loadConfig('dlq', local ? { ...env, ...local.env } : env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.err(`dlq: ${err.message}`);
    return 2;
  }
  const { queueUrl, dlqUrl } = config.consumer;
  const sqs = deps.createSqs ? deps.createSqs(config) : createSqsClient(config.aws, 1);
  try {
    if (args.command === 'list') {
      const letters = await listDeadLetters({ sqs, dlqUrl, ...(args.max ? { max: args.max } : {}) });
      if (args.json) {
        for (const l of letters) {
          const { body, ...rest } = l;
          io.out(JSON.stringify(args.showBody ? l : rest));
        }
      } else {
        // With --max the listing stops early: the queue's own count says how many there are.
        const total = args.max
          ? Math.max(await countMessages({ sqs, queueUrl: dlqUrl }), letters.length)
          : letters.length;
        io.out(
          `${total} message(s) in ${dlqUrl}${total > letters.length ? ` (${letters.length} listed, --max ${args.max})` : ''}`,
        );
        if (letters.length > 0) for (const line of formatTable(letters, args.showBody)) io.out(line);
      }
      return 0;
    }
    if (!config.aws.endpointUrl && args.max === undefined) {
      const task = await startRedriveTask({ sqs, dlqUrl, queueUrl });
      io.out(
        `started an SQS message move task from ${task.sourceArn} to ${task.destinationArn} ` +
          `(task handle ${task.taskHandle}); follow it with ` +
          `\`aws sqs list-message-move-tasks --source-arn ${task.sourceArn}\``,
      );
      return 0;
    }
    const result = await redriveDeadLetters({
      sqs,
      dlqUrl,
      queueUrl,
      ...(args.max ? { max: args.max } : {}),
      onMoved: (l) => io.out(`moved ${l.messageId} (${l.code ?? 'retries exhausted'})`),
    });
    io.out(`${result.moved} message(s) moved back to ${queueUrl}`);
    for (const f of result.failed) io.err(`dlq: could not move ${f.messageId}: ${f.error}`);
    return result.failed.length > 0 ? 1 : 0;
  } catch (err) {
    const e = err as Error & { name?: string };
    io.err(`dlq: ${args.command} failed: ${e.name && e.name !== 'Error' ? `${e.name}: ` : ''}${e.message}`);
    return 1;
  } finally {
    sqs.destroy();
  }
}
