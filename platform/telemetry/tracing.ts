import { AwsInstrumentation } from '@opentelemetry/instrumentation-aws-sdk';
import { ExpressInstrumentation, ExpressLayerType } from '@opentelemetry/instrumentation-express';
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
      // A span per middleware (parsers, auth, validator, limits) costs more than it tells: the
      // route's span and the server span carry the timing that matters.
      new ExpressInstrumentation({ ignoreLayersType: [ExpressLayerType.MIDDLEWARE] }),
      new PgInstrumentation({ enhancedDatabaseReporting: false }),
      new AwsInstrumentation({ suppressInternalInstrumentation: true }),
    ],
  }).start();
}
