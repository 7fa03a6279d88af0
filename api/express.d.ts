import type { Logger } from 'pino';
import type { Principal } from './auth.ts';

declare module 'express-serve-static-core' {
  interface Request {
    /** The request id: the caller's `x-request-id` when sane, else a fresh UUID. */
    id: string;
    /**
     * A child logger carrying the request id and, once authenticated, the principal (and trace ids
     * while a span is active). Made on first use.
     */
    log: Logger;
    /** The authenticated caller, when authentication is on. */
    principal?: Principal;
  }
}
