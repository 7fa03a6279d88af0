import { createLogger } from '../platform/logger.ts';
import { crashOnUnexpectedErrors, loadConfigOrExit } from '../platform/process.ts';
import { createShutdown, exitOnSignals } from '../platform/shutdown.ts';
import { startApi } from './server.ts';

const config = loadConfigOrExit('api');
const log = createLogger({ level: config.logLevel, name: 'ingesta-api' });
crashOnUnexpectedErrors(log);
const api = await startApi(config, log);
exitOnSignals(createShutdown({ log, timeoutMs: config.shutdownTimeoutMs, steps: api.shutdownSteps }), log);
