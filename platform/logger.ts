import { trace } from '@opentelemetry/api';
import { type DestinationStream, type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger } from 'pino';

/**
 * JSON logs, fields first. Every line written inside an active span carries its `trace_id` and
 * `span_id`, so a log line leads to its trace. Credentials are redacted; payloads are never logged.
 */
export function createLogger(options: {
  level: string;
  name: string;
  /**
   * Where lines go. Default: file descriptor 1, written synchronously. Local mode passes
   * `process.stdout`, whose write errors (a terminal that hung up) it can ignore.
   */
  destination?: DestinationStream;
}): Logger {
  const settings: LoggerOptions = {
    name: options.name,
    level: options.level,
    base: { service: options.name },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'headers.authorization',
        'authorization',
        'databaseUrl',
        '*.password',
      ],
      censor: '[redacted]',
    },
    mixin() {
      const span = trace.getActiveSpan();
      if (!span) return {};
      const { traceId, spanId } = span.spanContext();
      return { trace_id: traceId, span_id: spanId };
    },
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}
