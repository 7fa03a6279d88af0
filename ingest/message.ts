import type { MessageAttributeValue as SnsAttribute } from '@aws-sdk/client-sns';
import type { Message } from '@aws-sdk/client-sqs';
import { type AcceptedEvent, maxEventBytes, type ReadOptions, readEventText } from './contract.ts';
import { encodeHeaderValue } from './http-binding.ts';
import { earliestMs, endMs, fromEpoch, type Timestamp } from './timestamp.ts';

/**
 * The wire format between the API and the consumer. The SNS message body is the event's JSON text
 * as its producer sent it; attributes carry what subscription filters and the consumer need without
 * parsing the body. SNS drops trace context silently past 10 attributes: these are at most 5.
 */
export const attributeNames = {
  type: 'type',
  source: 'source',
  acceptedAt: 'ingesta_accepted_at',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
} as const;

export interface OutgoingMessage {
  body: string;
  attributes: Record<string, SnsAttribute>;
}

/**
 * A string as a message attribute value both SQS and its emulators take: encoded as the CloudEvents
 * HTTP binding encodes header values (space, `"`, `%` and everything outside printable ASCII as
 * UTF-8 `%XX`). The usual `type` and `source` stay as they are, for subscription filters.
 */
export const encodeAttributeValue = (value: string) =>
  encodeHeaderValue(value.isWellFormed() ? value : value.toWellFormed());

/** What a message needs of an event: its text and the attributes copied for filters. */
export type MessageEvent = Pick<AcceptedEvent, 'text' | 'type' | 'source'>;

/** Builds the SNS message for an accepted event. `trace` holds W3C `traceparent`/`tracestate` if any. */
export function toOutgoingMessage(
  event: MessageEvent,
  acceptedAtMs: number,
  trace: Record<string, string> = {},
): OutgoingMessage {
  const attributes: Record<string, SnsAttribute> = {
    [attributeNames.type]: { DataType: 'String', StringValue: encodeAttributeValue(event.type) },
    [attributeNames.source]: { DataType: 'String', StringValue: encodeAttributeValue(event.source) },
    [attributeNames.acceptedAt]: { DataType: 'Number', StringValue: String(acceptedAtMs) },
  };
  for (const key of [attributeNames.traceparent, attributeNames.tracestate]) {
    const value = trace[key];
    if (value) attributes[key] = { DataType: 'String', StringValue: value };
  }
  return { body: event.text, attributes };
}

/** Why a message can never be stored; STORE_REJECTED is PostgreSQL refusing the row itself. */
export type RejectionCode = 'NOT_JSON' | 'SCHEMA_VIOLATION' | 'EVENT_TOO_LARGE' | 'STORE_REJECTED';

export interface ReceivedEvent {
  event: AcceptedEvent;
  /** The time the store files the event under: its own `time`, or else when the API accepted it. */
  time: Timestamp;
  /** True when the producer sent no `time`. */
  timeDefaulted: boolean;
  acceptedAtMs: number;
  /** The producer's W3C trace context, kept with the event so a replay can link back to it. */
  traceparent?: string;
}

export type ParsedMessage =
  | ({ ok: true; trace: Record<string, string> } & ReceivedEvent)
  | { ok: false; code: RejectionCode; reason: string };

interface SnsEnvelope {
  Type: 'Notification';
  Message: string;
  MessageAttributes?: Record<string, { Type: string; Value: string }>;
}

const isEnvelope = (value: unknown): value is SnsEnvelope =>
  typeof value === 'object' &&
  value !== null &&
  (value as SnsEnvelope).Type === 'Notification' &&
  typeof (value as SnsEnvelope).Message === 'string';

/** The first few problems, as one line for a DLQ reason. */
const summarize = (problems: { path: string; message: string }[]) =>
  problems
    .slice(0, 5)
    .map((p) => `${p.path || '/'} ${p.message}`)
    .join('; ');

/**
 * Reads one SQS message, a raw-delivery body or an SNS envelope, through the acceptance contract the
 * API applied. A rejection is final (the message can never succeed) and carries a reason for the DLQ.
 * The consumer's time window is the API's widened by `consumerGraceMs` (./time-window.ts).
 */
export function parseMessage(message: Message, options: ReadOptions = {}): ParsedMessage {
  let body = message.Body ?? '';
  if (Buffer.byteLength(body) > maxEventBytes * 1.5) {
    return { ok: false, code: 'EVENT_TOO_LARGE', reason: `message body over ${maxEventBytes} bytes` };
  }
  const attributes: Record<string, string> = {};
  for (const [name, attr] of Object.entries(message.MessageAttributes ?? {})) {
    if (attr.StringValue !== undefined) attributes[name] = attr.StringValue;
  }
  // An SNS envelope (a subscription without raw delivery) wraps the event and its attributes.
  if (body.startsWith('{"Type"') || body.includes('"Notification"')) {
    let envelope: unknown;
    try {
      envelope = JSON.parse(body);
    } catch {
      envelope = undefined;
    }
    if (isEnvelope(envelope)) {
      for (const [name, attr] of Object.entries(envelope.MessageAttributes ?? {}))
        attributes[name] = attr.Value;
      body = envelope.Message;
    }
  }
  const verdict = readEventText(body, options);
  if (!verdict.ok) {
    if (verdict.malformed) return { ok: false, code: 'NOT_JSON', reason: verdict.malformed };
    const code = verdict.tooLarge ? 'EVENT_TOO_LARGE' : 'SCHEMA_VIOLATION';
    return { ok: false, code, reason: `not an event ingesta accepts: ${summarize(verdict.problems)}` };
  }
  const sentMs = Number(message.Attributes?.SentTimestamp ?? Date.now());
  const acceptedAtAttribute = Number(attributes[attributeNames.acceptedAt] ?? sentMs);
  const acceptedAtMs =
    acceptedAtAttribute >= earliestMs && acceptedAtAttribute < endMs
      ? Math.trunc(acceptedAtAttribute)
      : sentMs;
  const trace: Record<string, string> = {};
  for (const key of [attributeNames.traceparent, attributeNames.tracestate]) {
    const v = attributes[key];
    if (v) trace[key] = v;
  }
  const { event } = verdict;
  return {
    ok: true,
    ...(trace.traceparent ? { traceparent: trace.traceparent } : {}),
    event,
    time: event.time ?? fromEpoch(acceptedAtMs),
    timeDefaulted: event.time === undefined,
    acceptedAtMs,
    trace,
  };
}
