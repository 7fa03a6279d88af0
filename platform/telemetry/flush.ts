import { trace } from '@opentelemetry/api';

interface ShutdownableProvider {
  shutdown?: () => Promise<void>;
}

/**
 * Flushes and stops the tracer provider, if tracing was started: the last shutdown step, so the
 * spans of the drained work are exported. A no-op when tracing is off.
 */
export async function flushTelemetry(): Promise<void> {
  const global = trace.getTracerProvider() as {
    getDelegate?: () => ShutdownableProvider;
  } & ShutdownableProvider;
  const provider = global.getDelegate?.() ?? global;
  await provider.shutdown?.();
}
