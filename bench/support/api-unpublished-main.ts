/**
 * B1's ceiling: the API exactly as `api/main.ts` runs it, except that accepted events go to a
 * publisher that holds nothing and resolves at once. Loaded like the API, it shows how close to the
 * bare route ingesta could come if publishing to SNS cost nothing: the validation, authentication,
 * limits, telemetry and HTTP handling that remain are the API's own cost.
 */
import { startApi } from '../../api/server.ts';
import type { EventPublisher } from '../../api/sns-publisher.ts';
import { createLogger } from '../../platform/logger.ts';
import { crashOnUnexpectedErrors, loadConfigOrExit } from '../../platform/process.ts';
import { createShutdown, exitOnSignals } from '../../platform/shutdown.ts';

const publisher: EventPublisher = { destination: 'nowhere', publish: async () => {} };

const config = loadConfigOrExit('api');
const log = createLogger({ level: config.logLevel, name: 'ingesta-api' });
crashOnUnexpectedErrors(log);
const api = await startApi(config, log, { publisher });
exitOnSignals(createShutdown({ log, timeoutMs: config.shutdownTimeoutMs, steps: api.shutdownSteps }), log);
