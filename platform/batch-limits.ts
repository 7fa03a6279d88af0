/** What one AWS batch call (SNS PublishBatch, SQS SendMessageBatch) accepts. */
export interface BatchLimits {
  maxEntries: number;
  maxBytes: number;
}

/**
 * Splits items into calls within `limits`, in order. An item bigger than `maxBytes` on its own goes
 * in a call of its own, for the service to refuse with its own error rather than to hold back the
 * others.
 */
export function chunkWithin<T>(items: T[], bytesOf: (item: T) => number, limits: BatchLimits): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = bytesOf(item);
    if (current.length === limits.maxEntries || (current.length > 0 && bytes + size > limits.maxBytes)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
