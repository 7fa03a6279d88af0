import type { MessageAttributeValue as SnsAttribute } from '@aws-sdk/client-sns';
import type { Message } from '@aws-sdk/client-sqs';
import { type CloudEvent, type EventValidator, maxEventBytes } from './cloud-event.ts';

/**
 * The wire format between the API and the consumer. The SNS message body is the CloudEvent JSON
 * (with `time` filled in); attributes carry what subscription filters and the consumer need without
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

/** Builds the SNS message for an accepted event. `trace` holds W3C `traceparent`/`tracestate` if any. */
export function toOutgoingMessage(
  event: CloudEvent,
  acceptedAtMs: number,
  trace: Record<string, string> = {},
): OutgoingMessage {
  const attributes: Record<string, SnsAttribute> = {
    [attributeNames.type]: { DataType: 'String', StringValue: event.type },
    [attributeNames.source]: { DataType: 'String', StringValue: event.source },
    [attributeNames.acceptedAt]: { DataType: 'Number', StringValue: String(acceptedAtMs) },
  };
  for (const key of [attributeNames.traceparent, attributeNames.tracestate]) {
    const value = trace[key];
    if (value) attributes[key] = { DataType: 'String', StringValue: value };
  }
  return { body: JSON.stringify(event), attributes };
}

/** Why a message can never be stored; STORE_REJECTED is PostgreSQL refusing the row itself. */
export type RejectionCode = 'NOT_JSON' | 'SCHEMA_VIOLATION' | 'EVENT_TOO_LARGE' | 'STORE_REJECTED';

export type ParsedMessage =
  | { ok: true; event: CloudEvent & { time: string }; acceptedAtMs: number; trace: Record<string, string> }
  | { ok: false; code: RejectionCode; reason: string };

interface SnsEnvelope {
  Type: 'Notification';
  Message: string;
  MessageAttributes?: Record<string, { Type: string; Value: string }>;
  Timestamp?: string;
}

const isEnvelope = (value: unknown): value is SnsEnvelope =>
  typeof value === 'object' &&
  value !== null &&
  (value as SnsEnvelope).Type === 'Notification' &&
  typeof (value as SnsEnvelope).Message === 'string';

/**
 * Why JSON.parse failed, without the excerpt of the input V8 quotes in some messages
 * (`Unexpected token 'h', "hello worl"... is not valid JSON`): reasons are logged, payloads never.
 */
function jsonError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const position = /at position (\d+)/.exec(message)?.[1];
  const kind = /^Unexpected end of JSON input/.test(message)
    ? 'unexpected end of input'
    : /^Unexpected token/.test(message)
      ? 'unexpected token'
      : 'invalid JSON';
  return position === undefined ? kind : `${kind} at position ${position}`;
}

/**
 * Reads one SQS message: a raw-delivery body or an SNS envelope. A rejection is final (the message
 * can never succeed) and carries a reason for the DLQ.
 */
export function parseMessage(message: Message, validate: EventValidator): ParsedMessage {
  const raw = message.Body ?? '';
  if (Buffer.byteLength(raw) > maxEventBytes * 1.5) {
    return { ok: false, code: 'EVENT_TOO_LARGE', reason: `message body over ${maxEventBytes} bytes` };
  }
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    return { ok: false, code: 'NOT_JSON', reason: `body is not JSON: ${jsonError(err)}` };
  }
  const attributes: Record<string, string> = {};
  for (const [name, attr] of Object.entries(message.MessageAttributes ?? {})) {
    if (attr.StringValue !== undefined) attributes[name] = attr.StringValue;
  }
  let body = raw;
  if (isEnvelope(value)) {
    for (const [name, attr] of Object.entries(value.MessageAttributes ?? {})) attributes[name] = attr.Value;
    body = value.Message;
    try {
      value = JSON.parse(value.Message);
    } catch (err) {
      return { ok: false, code: 'NOT_JSON', reason: `SNS Message is not JSON: ${jsonError(err)}` };
    }
  }
  if (Buffer.byteLength(body) > maxEventBytes) {
    return { ok: false, code: 'EVENT_TOO_LARGE', reason: `event over ${maxEventBytes} bytes` };
  }
  const problems = validate(value);
  if (problems.length > 0) {
    const reason = problems
      .slice(0, 5)
      .map((p) => `${p.path} ${p.message}`)
      .join('; ');
    return { ok: false, code: 'SCHEMA_VIOLATION', reason: `not a valid CloudEvent: ${reason}` };
  }
  const event = value as CloudEvent;
  const sentMs = Number(message.Attributes?.SentTimestamp ?? Date.now());
  const acceptedAtMs = Number(attributes[attributeNames.acceptedAt] ?? sentMs);
  const time = event.time ?? new Date(acceptedAtMs).toISOString();
  const trace: Record<string, string> = {};
  for (const key of [attributeNames.traceparent, attributeNames.tracestate]) {
    const v = attributes[key];
    if (v) trace[key] = v;
  }
  return {
    ok: true,
    event: { ...event, time },
    acceptedAtMs: Number.isFinite(acceptedAtMs) ? acceptedAtMs : sentMs,
    trace,
  };
}
