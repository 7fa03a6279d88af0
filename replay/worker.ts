import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { PublishBatchCommand, type SNSClient } from '@aws-sdk/client-sns';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import {
  context,
  type Link,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { encodeAttributeValue } from '../ingest/message.ts';
import type { Logger } from '../platform/logger.ts';
import { textMatcher } from './filter.ts';
import type { LeasedReplay, ReplayRow, ReplayStore } from './store.ts';

/** Attributes a replayed message carries besides `type` and `source`. */
export const replayAttributes = {
  replayId: 'ingesta_replay_id',
  position: 'ingesta_replay_position',
} as const;

/** A target is an SNS topic (ARN) or an SQS queue (URL). */
export const isTopic = (target: string) => target.startsWith('arn:');

export interface ReplayerOptions {
  store: ReplayStore;
  sqs: SQSClient;
  sns: SNSClient;
  log: Logger;
  /** Seconds a lease lasts without renewal: how long a dead pod's replay waits for another. Default 30. */
  leaseSec?: number;
  /** How often an idle worker looks for work, and a caught-up follower for new events, in ms. Default 1000. */
  idleMs?: number;
  /** Events read per store query (at most 10 are sent per call). Default 100. */
  readBatch?: number;
  /** Replays one worker sends at once (a following replay holds its slot until cancelled). Default 4. */
  concurrency?: number;
  /** Counts sent events; set at start for metrics. */
  onSent?: (count: number) => void;
  /** Called on each recorded position, and while a caught-up follower waits: what the stall alert reads. */
  onProgress?: () => void;
  /** Called with how many replays the worker holds, when that changes. */
  onLease?: (held: number) => void;
}

/**
 * The event as its producer sent it, plus the `replayid` extension (the last member: a parser that
 * keeps the last of a repeated name reads ingesta's id even if the event carried one of its own).
 */
export const withReplayId = (text: string, replayId: string) =>
  `${text.slice(0, -1)},"replayid":"${replayId}"}`;

/**
 * Sends the replays of the store, one at a time per worker: claim a lease, read the next events in
 * the store's order, send at most the replay's rate, record the position, renew, repeat. A replay
 * without follow ends once it has sent what its snapshot saw; with follow it then keeps sending what
 * is stored, in the same order, until it is cancelled.
 *
 * Delivery is at least once: a position is recorded after its events were sent (a step of at most
 * 100, in up to 10 calls at once), so a worker that dies in between sends that step again when
 * another takes the lease over. Each message carries
 * the replay id and its position in the replay, so a target can drop a repeat.
 */
export function createReplayer(options: ReplayerOptions) {
  const { store, sqs, sns, log } = options;
  const leaseSec = options.leaseSec ?? 30;
  const idleMs = options.idleMs ?? 1_000;
  const readBatch = options.readBatch ?? 100;
  const concurrency = options.concurrency ?? 4;
  const maxCallsPerStep = 10;
  const owner = `${process.pid}-${randomUUID().slice(0, 8)}`;
  const stopping = new AbortController();
  const tracer = trace.getTracer('ingesta-replay');
  let running: Promise<void> | undefined;

  /**
   * One call to the target, in a producer span of its own that links to each event's original
   * trace: the replayed messages carry that span's context, so a trace shows where they came from.
   */
  function send(target: string, replayId: string, rows: ReplayRow[], startIndex: number): Promise<void> {
    const links: Link[] = rows.flatMap((row) => {
      if (!row.traceparent) return [];
      const original = trace.getSpanContext(
        propagation.extract(ROOT_CONTEXT, { traceparent: row.traceparent }),
      );
      return original ? [{ context: original }] : [];
    });
    const name = isTopic(target)
      ? (target.split(':').at(-1) ?? target)
      : (target.split('/').at(-1) ?? target);
    return tracer.startActiveSpan(
      `send ${name}`,
      {
        kind: SpanKind.PRODUCER,
        links,
        attributes: {
          'messaging.system': isTopic(target) ? 'aws.sns' : 'aws.sqs',
          'messaging.operation.type': 'send',
          'messaging.destination.name': name,
          'messaging.batch.message_count': rows.length,
          'ingesta.replay.id': replayId,
        },
      },
      async (span) => {
        try {
          const carrier: Record<string, string> = {};
          propagation.inject(context.active(), carrier);
          await sendCall(target, replayId, rows, startIndex, carrier);
        } catch (err) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
          throw err;
        } finally {
          span.end();
        }
      },
    );
  }

  async function sendCall(
    target: string,
    replayId: string,
    rows: ReplayRow[],
    startIndex: number,
    carrier: Record<string, string>,
  ): Promise<void> {
    const entries = rows.map((row, i) => ({
      Id: String(i),
      body: withReplayId(row.text, replayId),
      attributes: {
        type: { DataType: 'String', StringValue: encodeAttributeValue(row.type) },
        source: { DataType: 'String', StringValue: encodeAttributeValue(row.source) },
        [replayAttributes.replayId]: { DataType: 'String', StringValue: replayId },
        [replayAttributes.position]: { DataType: 'Number', StringValue: String(startIndex + i + 1) },
        ...(carrier.traceparent
          ? { traceparent: { DataType: 'String', StringValue: carrier.traceparent } }
          : {}),
      },
    }));
    const result = isTopic(target)
      ? await sns.send(
          new PublishBatchCommand({
            TopicArn: target,
            PublishBatchRequestEntries: entries.map((e) => ({
              Id: e.Id,
              Message: e.body,
              MessageAttributes: e.attributes,
            })),
          }),
        )
      : await sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: target,
            Entries: entries.map((e) => ({ Id: e.Id, MessageBody: e.body, MessageAttributes: e.attributes })),
          }),
        );
    const failed = result.Failed ?? [];
    if (failed.length > 0)
      throw new Error(`the target refused ${failed.length} of ${rows.length} (${failed[0]?.Code})`);
  }

  /** Runs one leased replay until it ends, is cancelled, loses its lease, or the worker stops. */
  async function run(leased: LeasedReplay): Promise<void> {
    const { replay } = leased;
    const matches = textMatcher(replay.filter);
    const perCall = Math.max(1, Math.min(10, replay.ratePerSec));
    // Calls in flight at once: a tenth of the rate's calls a second, so a slow rate still goes one call at a time.
    const callsPerStep = Math.max(1, Math.min(maxCallsPerStep, Math.floor(replay.ratePerSec / perCall / 10)));
    let sent = replay.eventsSent;
    // The rate cap: a call of n events may start once n / rate seconds passed since the previous one.
    let nextCallAt = performance.now();
    while (!stopping.signal.aborted) {
      const { rows, caughtUp } = await store.read(leased, readBatch);
      if (rows.length === 0) {
        if (caughtUp && !replay.follow) {
          await store.finish(leased, owner, 'done');
          log.info({ replayId: replay.id, sent }, 'replay done');
          return;
        }
        if (!(await store.renew(leased, owner, leaseSec, caughtUp ? 'following' : 'running'))) return;
        // Caught up is progress too: a follower with nothing new to send is not stalled.
        if (caughtUp) options.onProgress?.();
        await sleep(idleMs, undefined, { signal: stopping.signal }).catch(() => undefined);
        continue;
      }
      const wanted = matches ? rows.filter((r) => matches(r.text)) : rows;
      // A step: up to `callsPerStep` calls of up to 10 events, sent at once, then one recorded
      // position. Rows the CESQL filter drops still move the position, with the step that ends the read.
      const stepSize = perCall * callsPerStep;
      for (let i = 0; i < wanted.length; i += stepSize) {
        const step = wanted.slice(i, i + stepSize);
        const wait = nextCallAt - performance.now();
        if (wait > 0) await sleep(wait, undefined, { signal: stopping.signal }).catch(() => undefined);
        if (stopping.signal.aborted) return;
        await Promise.all(
          Array.from({ length: Math.ceil(step.length / perCall) }, (_, c) =>
            send(replay.target, replay.id, step.slice(c * perCall, (c + 1) * perCall), sent + c * perCall),
          ),
        );
        nextCallAt =
          Math.max(nextCallAt, performance.now() - 1_000) + (step.length * 1_000) / replay.ratePerSec;
        sent += step.length;
        options.onSent?.(step.length);
        const last = i + stepSize >= wanted.length ? (rows.at(-1) as ReplayRow) : (step.at(-1) as ReplayRow);
        if (!(await store.advance(leased, owner, leaseSec, last, step.length))) return;
        options.onProgress?.();
      }
      if (wanted.length === 0 && !(await store.advance(leased, owner, leaseSec, rows.at(-1) as ReplayRow, 0)))
        return;
    }
  }

  /** One leased replay, to its end or the worker's; a failure leaves the lease to lapse and be taken again. */
  async function runLeased(leased: LeasedReplay): Promise<void> {
    log.info({ replayId: leased.replay.id, position: leased.replay.position }, 'replay leased');
    options.onLease?.(active.size);
    try {
      await run(leased);
      if (stopping.signal.aborted) await store.release(leased, owner);
    } catch (err) {
      log.error({ err, replayId: leased.replay.id }, 'replay failed; retried after its lease');
    } finally {
      active.delete(leased.replay.id);
      options.onLease?.(active.size);
    }
  }

  const active = new Map<string, Promise<void>>();

  async function loop(): Promise<void> {
    while (!stopping.signal.aborted) {
      if (active.size < concurrency) {
        try {
          const leased = await store.claim(owner, leaseSec, [...active.keys()]);
          if (leased) {
            active.set(leased.replay.id, runLeased(leased));
            continue;
          }
        } catch (err) {
          log.error({ err }, 'could not look for replays');
        }
      }
      await sleep(idleMs, undefined, { signal: stopping.signal }).catch(() => undefined);
    }
    await Promise.all(active.values());
  }

  return {
    owner,
    start() {
      running ??= loop();
    },
    /** Finishes the call in flight, records its position, lets the lease go. */
    async stop() {
      stopping.abort();
      await running;
    },
  };
}
