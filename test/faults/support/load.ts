import { setTimeout as delay } from 'node:timers/promises';
import type { CloudEvent } from '../../../ingest/contract.ts';

/** One HTTP attempt of the load generator, as the client saw it. */
export interface Attempt {
  /** Date.now() when the request was sent and when its answer (or error) came. */
  startedAt: number;
  endedAt: number;
  target: string;
  /** HTTP status, or 0 when the connection failed (refused, reset, closed mid-request, timed out). */
  status: number;
  /** The Retry-After header of a 503 or 429. */
  retryAfter: string | null;
  /** The problem `code` of an error answer. */
  code?: string;
}

export interface LoadOptions {
  /**
   * Base URLs of the API instances able to take requests, read on every attempt, like a load
   * balancer's target list; attempts go round-robin over them.
   */
  targets: () => string[];
  /** Events per second (each event is one POST of one CloudEvent). */
  ratePerSec: number;
  /** `source` of every event, so a scenario can count its own rows. */
  source: string;
  /** Longest wait a Retry-After can impose, in ms. Default 2000. */
  maxRetryDelayMs?: number;
}

export interface LoadGenerator {
  /** Ids of the events that got a 202. */
  readonly accepted: Set<string>;
  /** Every attempt so far. */
  readonly attempts: Attempt[];
  /** Requests sent and not yet answered, to `target` when given, sent at or after `since` (Date.now()). */
  open(target?: string, since?: number): Attempt[];
  /**
   * Stops starting new events and resolves once every started event got its 202: a client retries
   * until its event is accepted. Rejects when that takes longer than `timeoutMs`.
   */
  stop(timeoutMs?: number): Promise<void>;
  /** Gives up at once on every pending event (cleanup after a failure). */
  abort(): void;
}

export function orderEventFor(source: string, id: string): CloudEvent {
  return {
    specversion: '1.0',
    id,
    source,
    type: 'order.created',
    subject: 'user-42',
    data: { productId: 'p-7', quantity: 2 },
  };
}

/** A client's retry delay: the server's Retry-After when it gave one, else a short backoff. */
function retryDelayMs(attempt: Attempt, failures: number, maxMs: number): number {
  const seconds = Number(attempt.retryAfter);
  if (attempt.retryAfter !== null && Number.isFinite(seconds)) return Math.min(seconds * 1000, maxMs);
  return Math.min(100 * 2 ** Math.min(failures, 4), maxMs);
}

/**
 * POSTs one body until it gets a 202, as a well-behaved client does: after a 503 or 429 it waits as
 * long as Retry-After says; after a connection error it backs off and tries the next target. A
 * repeated POST is safe because the store is idempotent on (source, id).
 */
export async function postUntilAccepted(
  options: {
    targets: () => string[];
    body: string;
    contentType?: string;
    attempts: Attempt[];
    /** Attempts sent and not yet answered; each is added before it is sent and removed when it ends. */
    open?: Set<Attempt>;
    maxRetryDelayMs?: number;
    signal?: AbortSignal;
  },
  pick: (targets: string[]) => string | undefined = (targets) =>
    targets[Math.floor(Math.random() * targets.length)],
): Promise<void> {
  const maxMs = options.maxRetryDelayMs ?? 2_000;
  for (let failures = 0; ; failures++) {
    options.signal?.throwIfAborted();
    const target = pick(options.targets());
    if (!target) {
      await delay(100, undefined, { signal: options.signal });
      continue;
    }
    const attempt: Attempt = { startedAt: Date.now(), endedAt: 0, target, status: 0, retryAfter: null };
    options.open?.add(attempt);
    try {
      const timeout = AbortSignal.timeout(10_000);
      const res = await fetch(`${target}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': options.contentType ?? 'application/cloudevents+json' },
        body: options.body,
        signal: options.signal ? AbortSignal.any([options.signal, timeout]) : timeout,
      });
      attempt.status = res.status;
      attempt.retryAfter = res.headers.get('retry-after');
      if (res.status !== 202) {
        const problem = (await res.json().catch(() => ({}))) as { code?: string };
        if (problem.code) attempt.code = problem.code;
      } else {
        await res.arrayBuffer();
      }
    } catch {
      attempt.status = 0;
    }
    attempt.endedAt = Date.now();
    options.open?.delete(attempt);
    options.attempts.push(attempt);
    if (attempt.status === 202) return;
    await delay(retryDelayMs(attempt, failures, maxMs), undefined, { signal: options.signal });
  }
}

/**
 * A bounded, steady load of unique events, `ratePerSec` new events per second, each retried until
 * accepted. Records every attempt and every accepted id, which scenarios reconcile with the store.
 */
export function startLoad(options: LoadOptions): LoadGenerator {
  const accepted = new Set<string>();
  const attempts: Attempt[] = [];
  const open = new Set<Attempt>();
  const pending = new Set<Promise<void>>();
  const abort = new AbortController();
  const startedAt = performance.now();
  let issued = 0;
  let next = 0;
  const roundRobin = (targets: string[]) =>
    targets.length === 0 ? undefined : targets[next++ % targets.length];

  const send = (id: string) => {
    const body = JSON.stringify(orderEventFor(options.source, id));
    const done = postUntilAccepted(
      {
        targets: options.targets,
        body,
        attempts,
        open,
        maxRetryDelayMs: options.maxRetryDelayMs ?? 2_000,
        signal: abort.signal,
      },
      roundRobin,
    ).then(
      () => {
        accepted.add(id);
      },
      () => undefined,
    );
    pending.add(done);
    void done.finally(() => pending.delete(done));
  };

  // Issues whatever is due at each tick, so a slow tick does not lower the rate.
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - startedAt) / 1000) * options.ratePerSec);
    while (issued < due) send(`evt-${issued++}-${crypto.randomUUID()}`);
  }, 10);

  return {
    accepted,
    attempts,
    open: (target, since = 0) =>
      [...open].filter((a) => (target === undefined || a.target === target) && a.startedAt >= since),
    abort() {
      clearInterval(timer);
      abort.abort();
    },
    async stop(timeoutMs = 60_000) {
      clearInterval(timer);
      const all = Promise.all([...pending]);
      const timeout = delay(timeoutMs, 'timeout' as const, { ref: false });
      if ((await Promise.race([all.then(() => 'done' as const), timeout])) === 'timeout') {
        abort.abort();
        throw new Error(
          `${pending.size} of ${issued} events were still not accepted ${timeoutMs} ms after the load stopped`,
        );
      }
    },
  };
}
