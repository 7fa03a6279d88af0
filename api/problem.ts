import { trace } from '@opentelemetry/api';
import type { ErrorRequestHandler, Request, Response } from 'express';
import { maxEventBytes } from '../ingest/contract.ts';
import { AppError } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';
import { hasBody } from './http-server.ts';

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
  // Refused before its body has arrived: close the socket after the answer rather than keep reading.
  if (hasBody(res.req) && !res.req.complete) res.setHeader('Connection', 'close');
  res.status(rest.status).type('application/problem+json').send(JSON.stringify(body));
}

interface ValidatorIssue {
  path?: string;
  message?: string;
  errorCode?: string;
}

interface ValidatorError {
  status: number;
  message?: string;
  errors?: ValidatorIssue[];
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

export interface ProblemOptions {
  /** The API's OpenAPI document: a 415 names the content types the route accepts. */
  openApiDocument?: Record<string, unknown>;
  /** Largest batch body, in bytes, named by a 413 BATCH_TOO_LARGE. */
  maxBatchBodyBytes?: number;
}

/** "POST /v1/events" → the request body media types the document declares for it. */
export function requestMediaTypes(document: Record<string, unknown> = {}): Map<string, string[]> {
  const types = new Map<string, string[]>();
  const paths = (document.paths ?? {}) as Record<
    string,
    Record<string, { requestBody?: { content?: object } }>
  >;
  for (const [path, operations] of Object.entries(paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const content = operation?.requestBody?.content;
      if (content) types.set(`${method.toUpperCase()} ${path}`, Object.keys(content));
    }
  }
  return types;
}

const formatBytes = (bytes: number) =>
  bytes % (1024 * 1024) === 0
    ? `${bytes} bytes (${bytes / 1024 / 1024} MiB)`
    : bytes % 1024 === 0
      ? `${bytes} bytes (${bytes / 1024} KiB)`
      : `${bytes} bytes`;

/**
 * The validator's messages, rewritten where they do not say what to change: an empty body, a query
 * parameter given twice. Event bodies and query times are the acceptance contract's, whose own
 * messages say what to change.
 */
function explainIssues(req: Request, issues: ValidatorIssue[]): ValidatorIssue[] {
  const body: unknown = req.body;
  const emptyBody =
    body === undefined ||
    body === null ||
    (typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0);
  if (
    emptyBody &&
    issues.length > 0 &&
    issues.every((i) => i.errorCode?.startsWith('required.') && /^\/body(\/[^/]+)?$/.test(i.path ?? ''))
  ) {
    return [
      {
        path: '/body',
        message: 'is empty: send a CloudEvent as JSON with at least specversion "1.0", id, source and type',
        errorCode: 'required.openapi.validation',
      },
    ];
  }
  const query = req.query as Record<string, unknown>;
  return issues.map((issue) => {
    const path = issue.path ?? '';
    const queryName = /^\/query\/([^/]+)$/.exec(path)?.[1];
    if (queryName !== undefined) {
      const value = query[queryName];
      if (Array.isArray(value)) {
        return { ...issue, message: `is given ${value.length} times: give "${queryName}" once` };
      }
    }
    return issue;
  });
}

/** What a 415 says: the content type sent, and those the route accepts. */
export function unsupportedMediaType(req: Request, accepted: string[] | undefined): string {
  const sent = req.get('content-type');
  const what = sent
    ? `content type "${sent}" is not accepted${
        sent.startsWith('application/x-www-form-urlencoded')
          ? ' (curl -d sends it unless a content-type header is given)'
          : ''
      }`
    : 'the request has no content-type header';
  return accepted && accepted.length > 0 ? `${what}; send one of: ${accepted.join(', ')}` : what;
}

/**
 * The one error middleware: operational errors become problem+json with a stable code; anything else
 * is a bug, logged with its stack and answered as a bare 500 without internals.
 */
export function problemMiddleware(log: Logger, options: ProblemOptions = {}): ErrorRequestHandler {
  const mediaTypes = requestMediaTypes(options.openApiDocument);
  const acceptedTypes = (req: Request) =>
    mediaTypes.get(
      `${req.method} ${(req as { openapi?: { openApiRoute?: string } }).openapi?.openApiRoute ?? req.path}`,
    ) ?? mediaTypes.get(`${req.method} ${req.path}`);
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
      if (err.headers) res.set(err.headers);
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
          detail: batch
            ? `the batch body is over ${options.maxBatchBodyBytes ? formatBytes(options.maxBatchBodyBytes) : 'the size limit'}: send its events in smaller batches`
            : `the event is over ${formatBytes(maxEventBytes)} serialized`,
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
    if (isValidatorError(err) && err.status === 415) {
      const accepted = acceptedTypes(req);
      const detail = unsupportedMediaType(req, accepted);
      if (accepted) res.setHeader('Accept-Post', accepted.join(', '));
      return sendProblem(res, {
        status: 415,
        code: 'UNSUPPORTED_MEDIA_TYPE',
        detail,
        instance,
        errors: [{ path: req.path, message: detail }],
      });
    }
    if (isValidatorError(err) && err.status >= 400 && err.status < 500) {
      const issues = err.status === 400 ? explainIssues(req, err.errors ?? []) : (err.errors ?? []);
      return sendProblem(res, {
        status: err.status,
        code: codesByStatus[err.status] ?? 'INVALID_REQUEST',
        detail:
          err.status === 400 && issues.length > 0
            ? issues.map((i) => `request${i.path ?? ''} ${i.message ?? ''}`).join(', ')
            : (err.message ?? 'invalid request'),
        instance,
        errors: issues.map((e) => ({ path: e.path, message: e.message, errorCode: e.errorCode })),
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
