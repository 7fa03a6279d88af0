import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/** Where the CLI writes; tests pass their own. */
export interface CliOutput {
  out(line: string): void;
  err(line: string): void;
  /** Rewrites the current line (a progress bar on a terminal). */
  progress?(line: string): void;
}

const usage = `npm run replay -- <command> [options]

  create --target URL|ARN [--type T] [--source S] [--subject S] [--from TIME] [--to TIME]
         [--cesql EXPR] [--rate N] [--follow] [--dry-run]
                       start a replay (or, with --dry-run, count what it would send)
  watch ID             follow a replay's progress until it ends (Ctrl-C leaves it running)
  show ID              print a replay as JSON
  cancel ID            cancel a replay

  --api URL            the ingesta API (default http://localhost:8080)
  --token-file PATH    a bearer token with the events:replay scope (when the API requires one)`;

interface Replay {
  id: string;
  state: string;
  eventsSent: number;
  eventsMatched?: number;
  etaSeconds?: number;
  error?: string;
}

/** `npm run replay`: the replay API for operators. Returns the exit code. */
export async function runReplayCli(
  args: string[],
  output: CliOutput,
  fetchImpl: typeof fetch = fetch,
): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(args);
  } catch (err) {
    output.err(`${(err as Error).message}\n\n${usage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, id] = positionals;
  const api = (values.api ?? 'http://localhost:8080').replace(/\/$/, '');
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (values['token-file'])
    headers.authorization = `Bearer ${readFileSync(values['token-file'], 'utf8').trim()}`;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetchImpl(`${api}${path}`, {
      method,
      headers,
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const answer = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${res.status} ${String(answer.detail ?? answer.title ?? '')}`);
    return answer;
  };
  try {
    switch (command) {
      case 'create': {
        if (!values.target) throw new UsageError('create needs --target');
        const filter = Object.fromEntries(
          (['type', 'source', 'subject', 'from', 'to', 'cesql'] as const)
            .filter((k) => values[k] !== undefined)
            .map((k) => [k, values[k]]),
        );
        const answer = await call('POST', '/v1/replays', {
          filter,
          target: values.target,
          ...(values.rate ? { ratePerSec: Number(values.rate) } : {}),
          follow: values.follow ?? false,
          dryRun: values['dry-run'] ?? false,
        });
        if (answer.dryRun) {
          output.out(
            `${answer.eventsMatched}${answer.exact ? '' : '+'} event(s) match; about ${answer.etaSeconds} s at the rate`,
          );
        } else output.out(`replay ${answer.id} started: ${answer.eventsMatched} event(s) matched so far`);
        return 0;
      }
      case 'show':
        output.out(JSON.stringify(await call('GET', `/v1/replays/${requireId(id)}`), null, 2));
        return 0;
      case 'cancel': {
        const answer = (await call('DELETE', `/v1/replays/${requireId(id)}`)) as unknown as Replay;
        output.out(`replay ${answer.id} ${answer.state} after ${answer.eventsSent} event(s)`);
        return 0;
      }
      case 'watch':
        return await watch(requireId(id), call, output);
      default:
        throw new UsageError(command ? `unknown command ${command}` : 'a command is needed');
    }
  } catch (err) {
    if (err instanceof UsageError) {
      output.err(`${err.message}\n\n${usage}`);
      return 2;
    }
    output.err(`replay: ${(err as Error).message}`);
    return 1;
  }
}

class UsageError extends Error {}

function parse(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    options: {
      api: { type: 'string' },
      'token-file': { type: 'string' },
      target: { type: 'string' },
      type: { type: 'string' },
      source: { type: 'string' },
      subject: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      cesql: { type: 'string' },
      rate: { type: 'string' },
      follow: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
    },
  });
}

const requireId = (id: string | undefined) => {
  if (!id || !/^[0-9a-f-]{36}$/i.test(id)) throw new UsageError('a replay id is needed');
  return id;
};

/** A progress line: a bar when the total is known, the count and state always. */
export function progressLine(replay: Replay): string {
  const total = replay.eventsMatched;
  const eta = replay.etaSeconds === undefined ? '' : `, about ${replay.etaSeconds} s left`;
  if (!total) return `${replay.state}: ${replay.eventsSent} sent${eta}`;
  const done = Math.min(1, replay.eventsSent / total);
  const width = 30;
  const filled = Math.round(done * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(done * 100).toFixed(0)}% ${replay.eventsSent}/${total} ${replay.state}${eta}`;
}

async function watch(
  id: string,
  call: (method: string, path: string) => Promise<Record<string, unknown>>,
  output: CliOutput,
): Promise<number> {
  for (;;) {
    const replay = (await call('GET', `/v1/replays/${id}`)) as unknown as Replay;
    const line = progressLine(replay);
    if (['done', 'cancelled', 'failed'].includes(replay.state)) {
      output.out(line);
      if (replay.error) output.err(replay.error);
      return replay.state === 'failed' ? 1 : 0;
    }
    (output.progress ?? output.out)(line);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}
