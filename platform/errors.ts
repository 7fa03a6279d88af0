/**
 * Operational errors with a stable `code` clients and dashboards can key on. Anything else that
 * reaches the error middleware is a programmer error: logged, answered as a bare 500.
 */
export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly detail: string;
  readonly errors: readonly unknown[] | undefined;
  readonly retryAfterSec: number | undefined;
  /** Response headers the answer carries (`Accept-Post` on a 415, say). */
  readonly headers: Readonly<Record<string, string>> | undefined;

  constructor(
    status: number,
    code: string,
    detail: string,
    options: {
      cause?: unknown;
      errors?: readonly unknown[];
      retryAfterSec?: number;
      headers?: Record<string, string>;
    } = {},
  ) {
    super(detail, { cause: options.cause });
    this.name = 'AppError';
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.errors = options.errors;
    this.retryAfterSec = options.retryAfterSec;
    this.headers = options.headers;
  }
}

export const notFound = (detail: string) => new AppError(404, 'NOT_FOUND', detail);

export const invalidRequest = (detail: string, errors?: readonly unknown[]) =>
  new AppError(400, 'INVALID_REQUEST', detail, { errors });

export const dependencyUnavailable = (dependency: string, cause: unknown, retryAfterSec = 1) =>
  new AppError(503, 'DEPENDENCY_UNAVAILABLE', `${dependency} is unavailable, retry later`, {
    cause,
    retryAfterSec,
  });
