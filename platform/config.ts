import { z } from 'zod';

/**
 * The one place that reads `process.env`. Every variable is described here; `loadConfig` validates
 * them at boot and fails with one readable message listing every problem.
 */

/**
 * Which process is being configured: each requires a different subset of variables. `local` is
 * `npm start` before it has made its own database and emulator: it requires nothing.
 */
export type Role = 'api' | 'consumer' | 'migrate' | 'dlq' | 'local';

interface Variable {
  description: string;
  /** Roles for which the variable has no default and must be set. */
  requiredFor?: readonly Role[];
}

/** Every environment variable ingesta reads, with what it means. The chart and docs are checked against it. */
export const configVariables = {
  NODE_ENV: { description: 'production for deployed processes (read by Express and libraries).' },
  DATABASE_URL: {
    description: 'PostgreSQL connection string (postgres://user:pass@host:5432/db?sslmode=require).',
    requiredFor: ['api', 'consumer', 'migrate'],
  },
  DATABASE_POOL_MAX: { description: 'Maximum connections per process pool. Default 10.' },
  DATABASE_STATEMENT_TIMEOUT_MS: {
    description: 'PostgreSQL statement_timeout for every query, in ms. Default 5000.',
  },
  EVENT_RETENTION_DAYS: {
    description:
      'Days stored events are kept; the maintenance job drops each month once all of it is older. 0 keeps them forever. Default 0.',
  },
  EVENT_TIME_PAST_MONTHS: {
    description:
      "With EVENT_RETENTION_DAYS=0: months before the current one an event's time may fall in; older times are refused with 400 (with retention, the oldest retained month is the bound). Default 24.",
  },
  EVENT_TIME_MONTHS_AHEAD: {
    description:
      "Months after the current one an event's time may fall in; later times are refused with 400. Default 1.",
  },
  AWS_REGION: { description: 'AWS region of the SNS topic and SQS queues. Default us-east-1.' },
  AWS_ENDPOINT_URL: { description: 'SNS/SQS endpoint override for an emulator; unset on AWS.' },
  INGEST_TOPIC_ARN: { description: 'ARN of the SNS topic events are published to.', requiredFor: ['api'] },
  INGEST_QUEUE_URL: {
    description: 'URL of the SQS queue subscribed to the topic.',
    requiredFor: ['consumer', 'dlq'],
  },
  INGEST_DLQ_URL: {
    description: 'URL of the dead-letter queue; poison messages are moved there with a reason.',
    requiredFor: ['consumer', 'dlq'],
  },
  PORT: { description: 'HTTP API port; 0 picks a free one. Default 8080.' },
  ADMIN_PORT: {
    description: 'Admin port serving /metrics, /livez, /readyz; 0 picks a free one. Default 9464.',
  },
  LOG_LEVEL: { description: 'pino level: fatal|error|warn|info|debug|trace|silent. Default info.' },
  SHUTDOWN_TIMEOUT_MS: {
    description: 'Hard deadline for a graceful shutdown after SIGTERM, in ms. Default 20000.',
  },
  CONSUMER_BATCH_SIZE: { description: 'Messages received per SQS poll (1-10). Default 10.' },
  CONSUMER_WAIT_TIME_SEC: { description: 'SQS long-poll wait (0-20 s). Default 20.' },
  CONSUMER_VISIBILITY_TIMEOUT_SEC: {
    description:
      'Visibility timeout requested on receive, in s; more than three statement timeouts, so a batch ends before its messages reappear. Default 60.',
  },
  CONSUMER_POLLERS: {
    description:
      'Concurrent pollers, each handling one batch at a time; at most DATABASE_POOL_MAX. Default 10.',
  },
  CONSUMER_STALL_AFTER_SEC: {
    description: '/livez fails when no poll has completed for this long, in s. Default 90.',
  },
  QUEUE_METRICS_INTERVAL_MS: {
    description: 'How often the consumer samples queue depth and age from SQS, in ms. Default 15000.',
  },
  AUTH_JWKS_URL: {
    description: 'JWKS URL of the token issuer; with AUTH_ISSUER and AUTH_AUDIENCE turns auth on.',
  },
  AUTH_ISSUER: { description: 'Required `iss` of bearer tokens.' },
  AUTH_AUDIENCE: { description: 'Required `aud` of bearer tokens.' },
  AUTH_ALGORITHMS: {
    description: 'Accepted JWS algorithms (asymmetric only). Default RS256,PS256,ES256,EdDSA.',
  },
  AUTH_CLOCK_TOLERANCE_SEC: { description: 'Clock skew allowed on exp/nbf, in s. Default 30.' },
  AUTH_JWKS_MAX_STALE_SEC: {
    description:
      "How long the issuer's keys keep verifying tokens past their 10-minute cache age while the JWKS cannot be fetched, in s; then 503. Default 3600.",
  },
  AUTH_FAILURES_PER_MINUTE: {
    description: 'Failed authentications (401) per client address per minute per pod before 429. Default 60.',
  },
  AUTH_DISABLED: {
    description:
      'true runs the API without authentication (an explicit choice; `npm start` sets it for local development). Without it the API refuses to start unless AUTH_JWKS_URL, AUTH_ISSUER and AUTH_AUDIENCE are set.',
  },
  RATE_LIMIT_PER_MINUTE: {
    description:
      'Requests per minute per principal (token subject, else client address) per pod. Default 6000.',
  },
  TRUST_PROXY_HOPS: {
    description: 'Proxies in front of the pod that set X-Forwarded-For (API Gateway = 1). Default 0.',
  },
  MAX_IN_FLIGHT_REQUESTS: {
    description: 'Load shedding: 503 beyond this many concurrent requests. Default 256.',
  },
  MAX_EVENT_LOOP_LAG_MS: {
    description: 'Load shedding: 503 while event-loop lag exceeds this, in ms. Default 500.',
  },
  REPLAY_TARGETS: {
    description:
      'Comma-separated SQS queue URLs and SNS topic ARNs replays may send to (the allow-list; IAM grants the same). Empty: replays are off.',
  },
  REPLAY_MAX_RATE_PER_SEC: { description: 'Highest rate a replay may ask for, in events/s. Default 1000.' },
  REPLAY_LEASE_SEC: {
    description:
      'Seconds a consumer pod holds a replay without renewing it; a replay of a pod that died resumes on another after this. Default 30.',
  },
  INGESTA_DATA_DIR: {
    description:
      'npm start only: keep the embedded PostgreSQL cluster in this directory across restarts (created on first use; migrations run at each start). Unset: a temporary one, removed at exit.',
  },
  OTEL_SERVICE_NAME: {
    description: 'Service name on traces (read by the OpenTelemetry SDK). Default ingesta.',
  },
  OTEL_TRACES_EXPORTER: {
    description: 'otlp, console or none. Tracing is off unless this or an OTLP endpoint is set.',
  },
  OTEL_EXPORTER_OTLP_ENDPOINT: { description: 'OTLP collector base URL, e.g. http://otel-collector:4318.' },
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: { description: 'OTLP traces URL, overriding the base endpoint.' },
  OTEL_EXPORTER_OTLP_PROTOCOL: { description: 'http/protobuf (default), http/json or grpc.' },
  OTEL_RESOURCE_ATTRIBUTES: { description: 'Extra resource attributes, e.g. deployment.environment=prod.' },
  OTEL_TRACES_SAMPLER: { description: 'Sampler, e.g. parentbased_traceidratio (read by the SDK).' },
  OTEL_TRACES_SAMPLER_ARG: { description: 'Sampler argument, e.g. 0.1 for 10 % of new traces.' },
  OTEL_SDK_DISABLED: { description: 'true turns tracing off whatever else is set.' },
  INGESTA_VERSION: {
    description:
      'The release (set by the image from its VERSION build argument): ingesta_build_info and service.version on spans. Default 0.0.0-dev.',
  },
  INGESTA_REVISION: {
    description:
      'The source revision (set by the image from its REVISION build argument), on ingesta_build_info. Default unknown.',
  },
  AUDIT_SAMPLE_RATE: {
    description:
      'Share of accepted events whose key the API records for the store audit (db/store-audit.ts), 0 to 1; 0 turns it off. Default 0.001.',
  },
} as const satisfies Record<string, Variable>;

export type ConfigVariable = keyof typeof configVariables;

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const url = z.url({ protocol: /^https?$/ });

const schema = z.object({
  NODE_ENV: z.enum(['production', 'development', 'test']).default('development'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional(),
  DATABASE_POOL_MAX: int(1, 200).default(10),
  DATABASE_STATEMENT_TIMEOUT_MS: int(100, 600_000).default(5_000),
  EVENT_RETENTION_DAYS: int(0, 36_500).default(0),
  EVENT_TIME_PAST_MONTHS: int(0, 120_000).default(24),
  EVENT_TIME_MONTHS_AHEAD: int(0, 24).default(1),
  AWS_REGION: z.string().min(1).default('us-east-1'),
  AWS_ENDPOINT_URL: url.optional(),
  INGEST_TOPIC_ARN: z.string().startsWith('arn:', 'must be an ARN').optional(),
  INGEST_QUEUE_URL: url.optional(),
  INGEST_DLQ_URL: url.optional(),
  PORT: int(0, 65_535).default(8080),
  ADMIN_PORT: int(0, 65_535).default(9464),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SHUTDOWN_TIMEOUT_MS: int(1_000, 600_000).default(20_000),
  CONSUMER_BATCH_SIZE: int(1, 10).default(10),
  CONSUMER_WAIT_TIME_SEC: int(0, 20).default(20),
  CONSUMER_VISIBILITY_TIMEOUT_SEC: int(10, 43_200).default(60),
  CONSUMER_POLLERS: int(1, 50).default(10),
  CONSUMER_STALL_AFTER_SEC: int(10, 3_600).default(90),
  QUEUE_METRICS_INTERVAL_MS: int(1_000, 600_000).default(15_000),
  AUTH_JWKS_URL: url.optional(),
  AUTH_ISSUER: z.string().min(1).optional(),
  AUTH_AUDIENCE: z.string().min(1).optional(),
  AUTH_ALGORITHMS: z
    .string()
    .default('RS256,PS256,ES256,EdDSA')
    .transform((v) => v.split(',').map((a) => a.trim()))
    .pipe(
      z
        .array(
          z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']),
        )
        .min(1),
    ),
  AUTH_CLOCK_TOLERANCE_SEC: int(0, 300).default(30),
  AUTH_JWKS_MAX_STALE_SEC: int(0, 604_800).default(3_600),
  AUTH_FAILURES_PER_MINUTE: int(1, 1_000_000).default(60),
  AUTH_DISABLED: z.enum(['true', 'false']).default('false'),
  RATE_LIMIT_PER_MINUTE: int(1, 10_000_000).default(6_000),
  TRUST_PROXY_HOPS: int(0, 10).default(0),
  MAX_IN_FLIGHT_REQUESTS: int(1, 100_000).default(256),
  MAX_EVENT_LOOP_LAG_MS: int(10, 60_000).default(500),
  REPLAY_TARGETS: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean),
    )
    .pipe(
      z.array(
        z
          .string()
          .regex(/^(?:arn:aws[\w-]*:sns:|https?:\/\/)/, 'must be an SNS topic ARN or an SQS queue URL'),
      ),
    ),
  REPLAY_MAX_RATE_PER_SEC: int(1, 100_000).default(1_000),
  REPLAY_LEASE_SEC: int(2, 3_600).default(30),
  INGESTA_DATA_DIR: z.string().min(1).optional(),
  OTEL_SERVICE_NAME: z.string().optional(),
  OTEL_TRACES_EXPORTER: z.string().optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: url.optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: url.optional(),
  OTEL_EXPORTER_OTLP_PROTOCOL: z.enum(['http/protobuf', 'http/json', 'grpc']).optional(),
  OTEL_RESOURCE_ATTRIBUTES: z.string().optional(),
  OTEL_TRACES_SAMPLER: z.string().optional(),
  OTEL_TRACES_SAMPLER_ARG: z.string().optional(),
  OTEL_SDK_DISABLED: z.enum(['true', 'false']).optional(),
  INGESTA_VERSION: z.string().optional(),
  INGESTA_REVISION: z.string().optional(),
  AUDIT_SAMPLE_RATE: z.coerce.number().min(0).max(1).default(0.001),
} satisfies Record<ConfigVariable, z.ZodType>);

export interface AuthConfig {
  jwksUrl: string;
  issuer: string;
  audience: string;
  algorithms: string[];
  clockToleranceSec: number;
  /** How long keys keep serving past their cache age while the issuer is down, in s. */
  jwksMaxStaleSec: number;
}

export interface Config {
  env: 'production' | 'development' | 'test';
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  shutdownTimeoutMs: number;
  adminPort: number;
  database: { url: string; poolMax: number; statementTimeoutMs: number };
  /** Days events are kept (0: forever); applied by `db/cli.ts maintain`. */
  eventRetentionDays: number;
  /** Event times accepted by the API and stored by the consumer (ingest/time-window.ts). */
  eventTime: { retentionDays: number; pastMonths: number; monthsAhead: number };
  aws: { region: string; endpointUrl: string | undefined };
  api: {
    port: number;
    topicArn: string;
    /** Undefined when authentication is off (local mode, or AUTH_DISABLED=true). */
    auth: AuthConfig | undefined;
    rateLimitPerMinute: number;
    failedAuthPerMinute: number;
    trustProxyHops: number;
    maxInFlightRequests: number;
    maxEventLoopLagMs: number;
    /** Share of accepted events whose keys are recorded for the store audit. */
    auditSampleRate: number;
  };
  consumer: {
    queueUrl: string;
    dlqUrl: string;
    batchSize: number;
    waitTimeSec: number;
    visibilityTimeoutSec: number;
    pollers: number;
    stallAfterSec: number;
    queueMetricsIntervalMs: number;
  };
  /** Replays (replay/): the API takes them, consumer pods send them. */
  replay: {
    /** SQS queue URLs and SNS topic ARNs replays may send to; empty: replays are off. */
    targets: string[];
    maxRatePerSec: number;
    leaseSec: number;
  };
  /** `npm start` only. */
  local: {
    /** Where the embedded PostgreSQL cluster is kept; undefined: a temporary one. */
    dataDir: string | undefined;
  };
}

/**
 * Whether to start the OpenTelemetry SDK. Read before anything else loads, so it looks at the raw
 * environment; the SDK itself reads the other OTEL_* variables. Off unless asked for, so a process
 * without a collector pays nothing.
 */
export function telemetrySettings(env: NodeJS.ProcessEnv = process.env): {
  enabled: boolean;
  serviceName: string;
  /** `service.version` on every span: the release, as `ingesta_build_info` says it. */
  serviceVersion: string;
} {
  const serviceName = env.OTEL_SERVICE_NAME || 'ingesta';
  const serviceVersion = buildInfo(env).version;
  if (env.OTEL_SDK_DISABLED === 'true') return { enabled: false, serviceName, serviceVersion };
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  if (exporters.length > 0)
    return { enabled: !exporters.every((e) => e === 'none'), serviceName, serviceVersion };
  return {
    enabled: Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
    serviceName,
    serviceVersion,
  };
}

/**
 * The release this process runs: `INGESTA_VERSION` and `INGESTA_REVISION`, which the image sets from
 * its build arguments (Dockerfile). Exported as `ingesta_build_info` and `service.version`.
 */
export function buildInfo(env: NodeJS.ProcessEnv = process.env): { version: string; revision: string } {
  return { version: env.INGESTA_VERSION || '0.0.0-dev', revision: env.INGESTA_REVISION || 'unknown' };
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Reads and validates the environment for one role. Variables another role needs may be absent.
 * @throws ConfigError listing every invalid or missing variable.
 */
export function loadConfig(role: Role, env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(
    Object.keys(configVariables)
      .filter((name) => env[name] !== undefined && env[name] !== '')
      .map((name) => [name, env[name]]),
  );
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const v = parsed.data;
  const problems: string[] = [];
  for (const [name, variable] of Object.entries(configVariables) as [ConfigVariable, Variable][]) {
    if (variable.requiredFor?.includes(role) && v[name] === undefined) {
      problems.push(`${name}: required for the ${role} (${variable.description})`);
    }
  }
  if (v.CONSUMER_POLLERS > v.DATABASE_POOL_MAX) {
    problems.push(
      `CONSUMER_POLLERS (${v.CONSUMER_POLLERS}) must not exceed DATABASE_POOL_MAX (${v.DATABASE_POOL_MAX})`,
    );
  }
  // A batch (insert, DLQ moves, deletes) must end well before its messages become visible again,
  // or another poller would process them in parallel.
  if (v.DATABASE_STATEMENT_TIMEOUT_MS * 3 >= v.CONSUMER_VISIBILITY_TIMEOUT_SEC * 1000) {
    problems.push(
      `DATABASE_STATEMENT_TIMEOUT_MS (${v.DATABASE_STATEMENT_TIMEOUT_MS}) must be under a third of ` +
        `CONSUMER_VISIBILITY_TIMEOUT_SEC (${v.CONSUMER_VISIBILITY_TIMEOUT_SEC} s)`,
    );
  }
  if (v.DATABASE_STATEMENT_TIMEOUT_MS >= v.SHUTDOWN_TIMEOUT_MS) {
    problems.push(
      'DATABASE_STATEMENT_TIMEOUT_MS must be below SHUTDOWN_TIMEOUT_MS so in-flight work can finish',
    );
  }
  const authParts = [v.AUTH_JWKS_URL, v.AUTH_ISSUER, v.AUTH_AUDIENCE];
  const auth =
    v.AUTH_JWKS_URL && v.AUTH_ISSUER && v.AUTH_AUDIENCE && v.AUTH_DISABLED !== 'true'
      ? {
          jwksUrl: v.AUTH_JWKS_URL,
          issuer: v.AUTH_ISSUER,
          audience: v.AUTH_AUDIENCE,
          algorithms: v.AUTH_ALGORITHMS,
          clockToleranceSec: v.AUTH_CLOCK_TOLERANCE_SEC,
          jwksMaxStaleSec: v.AUTH_JWKS_MAX_STALE_SEC,
        }
      : undefined;
  if (role === 'api') {
    if (authParts.some(Boolean) && !authParts.every(Boolean)) {
      problems.push('AUTH_JWKS_URL, AUTH_ISSUER and AUTH_AUDIENCE must be set together');
    } else if (!auth && v.AUTH_DISABLED !== 'true') {
      // Off only on purpose: local mode (`npm start`) sets AUTH_DISABLED itself, anything else says so.
      problems.push(
        'authentication is not configured: set AUTH_JWKS_URL, AUTH_ISSUER and AUTH_AUDIENCE, ' +
          'or AUTH_DISABLED=true to run the API without it on purpose',
      );
    }
  }
  if (v.PORT !== 0 && v.PORT === v.ADMIN_PORT) problems.push('PORT and ADMIN_PORT must differ');
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    env: v.NODE_ENV,
    logLevel: v.LOG_LEVEL,
    shutdownTimeoutMs: v.SHUTDOWN_TIMEOUT_MS,
    adminPort: v.ADMIN_PORT,
    database: {
      url: v.DATABASE_URL ?? '',
      poolMax: v.DATABASE_POOL_MAX,
      statementTimeoutMs: v.DATABASE_STATEMENT_TIMEOUT_MS,
    },
    eventRetentionDays: v.EVENT_RETENTION_DAYS,
    eventTime: {
      retentionDays: v.EVENT_RETENTION_DAYS,
      pastMonths: v.EVENT_TIME_PAST_MONTHS,
      monthsAhead: v.EVENT_TIME_MONTHS_AHEAD,
    },
    aws: { region: v.AWS_REGION, endpointUrl: v.AWS_ENDPOINT_URL },
    api: {
      port: v.PORT,
      topicArn: v.INGEST_TOPIC_ARN ?? '',
      auth,
      rateLimitPerMinute: v.RATE_LIMIT_PER_MINUTE,
      failedAuthPerMinute: v.AUTH_FAILURES_PER_MINUTE,
      trustProxyHops: v.TRUST_PROXY_HOPS,
      maxInFlightRequests: v.MAX_IN_FLIGHT_REQUESTS,
      maxEventLoopLagMs: v.MAX_EVENT_LOOP_LAG_MS,
      auditSampleRate: v.AUDIT_SAMPLE_RATE,
    },
    consumer: {
      queueUrl: v.INGEST_QUEUE_URL ?? '',
      dlqUrl: v.INGEST_DLQ_URL ?? '',
      batchSize: v.CONSUMER_BATCH_SIZE,
      waitTimeSec: v.CONSUMER_WAIT_TIME_SEC,
      visibilityTimeoutSec: v.CONSUMER_VISIBILITY_TIMEOUT_SEC,
      pollers: v.CONSUMER_POLLERS,
      stallAfterSec: v.CONSUMER_STALL_AFTER_SEC,
      queueMetricsIntervalMs: v.QUEUE_METRICS_INTERVAL_MS,
    },
    replay: {
      targets: v.REPLAY_TARGETS,
      maxRatePerSec: v.REPLAY_MAX_RATE_PER_SEC,
      leaseSec: v.REPLAY_LEASE_SEC,
    },
    local: { dataDir: v.INGESTA_DATA_DIR },
  };
}
