import { AwsInstrumentation } from '@opentelemetry/instrumentation-aws-sdk';
import { ExpressInstrumentation } from '@opentelemetry/instrumentation-express';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { NodeSDK } from '@opentelemetry/sdk-node';

/** Starts the SDK: exporter, sampler and resource come from OTEL_* variables (OTLP by default). */
export function startTracing(serviceName: string): void {
  new NodeSDK({
    serviceName,
    instrumentations: [
      new HttpInstrumentation({
        // Probes and scrapes on the admin port are not traffic.
        ignoreIncomingRequestHook: (req) => /^\/(metrics|livez|readyz)\b/.test(req.url ?? ''),
      }),
      new ExpressInstrumentation(),
      new PgInstrumentation({ enhancedDatabaseReporting: false }),
      new AwsInstrumentation({ suppressInternalInstrumentation: true }),
    ],
  }).start();
}
