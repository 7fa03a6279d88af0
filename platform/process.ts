import { type Config, ConfigError, loadConfig, type Role } from './config.ts';
import type { Logger } from './logger.ts';

/** Loads config or exits 2 with a readable list of what is wrong: the operator's first error message. */
export function loadConfigOrExit(role: Role, env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(role, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`ingesta ${role}: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
}

/** Programmer errors crash fast, after one structured log line the crash can be read from. */
export function crashOnUnexpectedErrors(log: Logger): void {
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception');
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    log.fatal({ err }, 'unhandled rejection');
    process.exit(1);
  });
}
