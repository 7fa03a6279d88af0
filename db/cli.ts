import { ConfigError, loadConfig } from '../platform/config.ts';
import { createLogger } from '../platform/logger.ts';
import { createDatabase } from './database.ts';
import { migrateLatest, migrateRollback } from './migrate.ts';

/** `node db/cli.ts latest|rollback`: what the chart's migration hook Job and `npm run db:migrate` run. */
const command = process.argv[2];
if (command !== 'latest' && command !== 'rollback') {
  console.error('usage: db/cli.ts latest|rollback');
  process.exit(2);
}

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig('migrate');
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(2);
}
const log = createLogger({ level: config.logLevel, name: 'ingesta-migrate' });
// DDL on a large table may legitimately run for minutes: the request-path statement timeout does not apply.
const db = createDatabase({
  ...config.database,
  poolMax: 2,
  statementTimeoutMs: 600_000,
  applicationName: 'ingesta-migrate',
});
try {
  const names =
    command === 'latest'
      ? await migrateLatest(db, config.database.url)
      : await migrateRollback(db, config.database.url);
  log.info({ command, migrations: names }, names.length > 0 ? 'migrations done' : 'nothing to do');
} catch (err) {
  log.error({ err, command }, 'migration failed');
  process.exitCode = 1;
} finally {
  await db.destroy();
}
