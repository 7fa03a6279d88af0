import { trace } from '@opentelemetry/api';
import type { ErrorRequestHandler, Response } from 'express';
import { AppError } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';

interface ProblemBody {
  type: string;
  title: string;
  status: number;
  code: string;
  detail?: string;
  instance?: string;
  errors?: unknown[];
  traceId?: string;
}

const titles: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

const codesByStatus: Record<number, string> = {
  400: 'INVALID_REQUEST',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  413: 'BODY_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'RATE_LIMITED',
};

/** Writes an RFC 9457 problem document. */
export function sendProblem(
  res: Response,
  problem: Omit<ProblemBody, 'type' | 'title'> & { retryAfterSec?: number | undefined },
): void {
  const { retryAfterSec, ...rest } = problem;
  const traceId = trace.getActiveSpan()?.spanContext().traceId;
  const body: ProblemBody = {
    type: `https://ingesta.dev/problems/${rest.code.toLowerCase().replaceAll('_', '-')}`,
    title: titles[rest.status] ?? 'Error',
    ...rest,
    ...(traceId && traceId !== '00000000000000000000000000000000' ? { traceId } : {}),
  };
  if (retryAfterSec !== undefined) res.setHeader('Retry-After', String(retryAfterSec));
  res.status(rest.status).type('application/problem+json').send(JSON.stringify(body));
}

interface ValidatorError {
  status: number;
  message?: string;
  errors?: { path?: string; message?: string; errorCode?: string }[];
}

interface BodyParserError {
  type: string;
  status?: number;
  expose?: boolean;
}

const isBodyParserError = (err: unknown): err is BodyParserError =>
  typeof err === 'object' &&
  err !== null &&
  typeof (err as BodyParserError).type === 'string' &&
  'expose' in err;

const isValidatorError = (err: unknown): err is ValidatorError =>
  typeof err === 'object' &&
  err !== null &&
  typeof (err as ValidatorError).status === 'number' &&
  Array.isArray((err as ValidatorError).errors);

/**
 * The one error middleware: operational errors become problem+json with a stable code; anything else
 * is a bug, logged with its stack and answered as a bare 500 without internals.
 */
export function problemMiddleware(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    // The request's own logger once the request context has run: its lines carry the request id.
    const requestLog = req.id ? req.log : log;
    const instance = `urn:ingesta:request:${String(res.getHeader('x-request-id') ?? '')}`;
    if (res.headersSent) {
      requestLog.error({ err }, 'error after response started');
      res.destroy();
      return;
    }
    if (err instanceof AppError) {
      if (err.status >= 500) requestLog.warn({ err, code: err.code }, 'dependency failure');
      return sendProblem(res, {
        status: err.status,
        code: err.code,
        detail: err.detail,
        instance,
        ...(err.errors ? { errors: [...err.errors] } : {}),
        retryAfterSec: err.retryAfterSec,
      });
    }
    if (isBodyParserError(err)) {
      if (err.type === 'entity.too.large') {
        const batch = req.is('application/cloudevents-batch+json');
        return sendProblem(res, {
          status: 413,
          code: batch ? 'BATCH_TOO_LARGE' : 'EVENT_TOO_LARGE',
          detail: batch ? 'the batch body is over the size limit' : 'the event is over 200 KiB',
          instance,
        });
      }
      if (err.type === 'entity.parse.failed') {
        return sendProblem(res, {
          status: 400,
          code: 'MALFORMED_JSON',
          detail: 'the body is not valid JSON',
          instance,
        });
      }
      if (err.type === 'charset.unsupported' || err.type === 'encoding.unsupported') {
        return sendProblem(res, {
          status: 415,
          code: 'UNSUPPORTED_MEDIA_TYPE',
          detail: 'unsupported charset or encoding',
          instance,
        });
      }
      const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 400;
      return sendProblem(res, {
        status,
        code: codesByStatus[status] ?? 'INVALID_REQUEST',
        detail: err.type,
        instance,
      });
    }
    if (isValidatorError(err) && err.status >= 400 && err.status < 500) {
      return sendProblem(res, {
        status: err.status,
        code: codesByStatus[err.status] ?? 'INVALID_REQUEST',
        detail: err.message ?? 'invalid request',
        instance,
        errors: (err.errors ?? []).map((e) => ({ path: e.path, message: e.message, errorCode: e.errorCode })),
      });
    }
    // Other client errors raised by Express or its parsers (e.g. a malformed percent-encoding).
    const status =
      (err as { status?: unknown; statusCode?: unknown }).status ??
      (err as { statusCode?: unknown }).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return sendProblem(res, {
        status,
        code: codesByStatus[status] ?? 'INVALID_REQUEST',
        detail: (err as { expose?: boolean }).expose
          ? (err as Error).message
          : (titles[status] ?? 'invalid request'),
        instance,
      });
    }
    requestLog.error({ err }, 'unhandled error');
    sendProblem(res, { status: 500, code: 'INTERNAL', detail: 'internal error', instance });
  };
}
