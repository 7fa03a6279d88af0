import type { NewEvent } from '../../db/event-repository.ts';
import { acceptEvent, type CloudEvent } from '../../ingest/contract.ts';
import { fromEpoch } from '../../ingest/timestamp.ts';

/**
 * What the consumer hands the store for `event`, accepted by the contract: filed under its own
 * `time`, or under `acceptedAtMs` when it has none.
 */
export function newEvent(
  event: CloudEvent,
  acceptedAtMs = event.time ? Date.parse(event.time) : Date.now(),
): NewEvent {
  const accepted = acceptEvent(event);
  return {
    event: accepted,
    time: accepted.time ?? fromEpoch(acceptedAtMs),
    timeDefaulted: accepted.time === undefined,
    acceptedAtMs,
  };
}

/** The stored text of an event, parsed: what GET answers. */
export const parsedText = (stored: { text: string }) => JSON.parse(stored.text) as CloudEvent;
