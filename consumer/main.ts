import { createLogger } from '../platform/logger.ts';
import { crashOnUnexpectedErrors, loadConfigOrExit } from '../platform/process.ts';
import { createShutdown, exitOnSignals } from '../platform/shutdown.ts';
import { startConsumer } from './server.ts';

const config = loadConfigOrExit('consumer');
const log = createLogger({ level: config.logLevel, name: 'ingesta-consumer' });
crashOnUnexpectedErrors(log);
const consumer = await startConsumer(config, log);
exitOnSignals(
  createShutdown({ log, timeoutMs: config.shutdownTimeoutMs, steps: consumer.shutdownSteps }),
  log,
);
