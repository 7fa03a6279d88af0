import type { CloudEvent } from '../../ingest/contract.ts';

/**
 * The worked example of the design (an airline shop's orders) with ids unique within the process,
 * so every request is a new event rather than a duplicate the store would absorb.
 */
export function createOrderEvents(prefix: string) {
  let next = 0;
  return (): CloudEvent => {
    const n = next++;
    return {
      specversion: '1.0',
      id: `${prefix}-${n}`,
      source: '/shop/web',
      type: 'order.created',
      subject: `user-${n % 1000}`,
      data: { productId: `p-${n % 100}`, quantity: 1 + (n % 5) },
    };
  };
}

/** A unique prefix per benchmark run, so runs against one database never collide. */
export const runPrefix = (name: string) => `${name}-${Date.now().toString(36)}`;
