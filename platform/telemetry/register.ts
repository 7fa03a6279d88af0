/**
 * Loaded with `node --import` before any application module, so the instrumentations can patch
 * http, express, pg and the AWS SDK as they load. Configured only through the standard OTEL_*
 * variables; when tracing is not asked for this does nothing at all.
 */
import { register } from 'node:module';
import { telemetrySettings } from '../config.ts';

const settings = telemetrySettings();
if (settings.enabled) {
  const { createAddHookMessageChannel } = await import('import-in-the-middle');
  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
  register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions);
  const { startTracing } = await import('./tracing.ts');
  startTracing(settings.serviceName, settings.serviceVersion);
  await waitForAllMessagesAcknowledged();
}
