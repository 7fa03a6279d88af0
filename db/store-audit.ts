import type { Database } from './database.ts';

/** The key of an accepted event, and when the API accepted it. */
export interface AuditSample {
  source: string;
  id: string;
  acceptedAt: Date;
}

export interface StoreAuditResult {
  /** Samples found stored, and deleted. */
  verified: number;
  /** Samples accepted more than `settleMinutes` ago and not in the store, oldest first. */
  missing: AuditSample[];
}

/** Records the keys of accepted events for a later audit; a key recorded twice is one sample. */
export async function recordAuditSamples(
  db: Database,
  samples: { source: string; id: string }[],
  acceptedAt: Date,
): Promise<void> {
  if (samples.length === 0) return;
  await db.raw(
    `insert into audit_samples (source, id, accepted_at)
     select source, id, ? from unnest(?::text[], ?::text[]) as t(source, id)
     on conflict do nothing`,
    [acceptedAt, samples.map((s) => s.source), samples.map((s) => s.id)],
  );
}

/**
 * The store audit: looks up the sampled keys of accepted events in the store, once each has had
 * `settleMinutes` to be stored. Found keys are verified and deleted; the rest are missing: accepted
 * and not stored, unless the event is in the DLQ (`npm run dlq` lists it), which a key alone cannot
 * tell. Missing samples stay, so every run reports them until someone deals with them (or they are
 * older than `keepDays` and dropped).
 * Defaults: `settleMinutes` 15 (the durability alert's window), `keepDays` 7, `maxMissing` 100.
 */
export async function auditStore(
  db: Database,
  options: { settleMinutes?: number; keepDays?: number; maxMissing?: number } = {},
): Promise<StoreAuditResult> {
  const { settleMinutes = 15, keepDays = 7, maxMissing = 100 } = options;
  const settled = `${settleMinutes} minutes`;
  const verified = await db.raw<{ rowCount: number }>(
    `delete from audit_samples s
     where s.accepted_at < now() - ?::interval
       and exists (select 1 from event_keys k where k.source = s.source and k.id = s.id)`,
    [settled],
  );
  await db.raw(`delete from audit_samples where accepted_at < now() - ?::interval`, [`${keepDays} days`]);
  const missing = await db.raw<{ rows: { source: string; id: string; accepted_at: Date }[] }>(
    `select source, id, accepted_at from audit_samples
     where accepted_at < now() - ?::interval
     order by accepted_at limit ?`,
    [settled, maxMissing],
  );
  return {
    verified: verified.rowCount,
    missing: missing.rows.map((r) => ({ source: r.source, id: r.id, acceptedAt: r.accepted_at })),
  };
}
