import { ConfigError, loadConfig } from '../platform/config.ts';
import { createLogger } from '../platform/logger.ts';
import { createDatabase } from './database.ts';
import { migrateLatest, migrateRollback } from './migrate.ts';
import { maintainPartitions } from './partitions.ts';
import { auditStore } from './store-audit.ts';

/**
 * `node db/cli.ts latest|rollback|maintain|audit`: what the chart's migration hook Job (`latest`), its
 * maintenance CronJob (`maintain`: partitions, then the store audit) and
 * `npm run db:migrate|db:rollback|db:maintain|db:audit` run.
 */
const commands = ['latest', 'rollback', 'maintain', 'audit'] as const;
const command = process.argv[2] as (typeof commands)[number];
if (!commands.includes(command)) {
  console.error(`usage: db/cli.ts ${commands.join('|')}`);
  process.exit(2);
}

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig('migrate');
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(2);
}
const name = command === 'maintain' || command === 'audit' ? 'ingesta-maintenance' : 'ingesta-migrate';
const log = createLogger({ level: config.logLevel, name });
// DDL on a large table may legitimately run for minutes: the request-path statement timeout does not apply.
const db = createDatabase({
  ...config.database,
  poolMax: 2,
  statementTimeoutMs: 600_000,
  applicationName: name,
});
try {
  if (command === 'maintain' || command === 'audit') {
    // Accepted events whose keys are not in the store: the job fails, so the missing keys are seen.
    const { verified, missing } = await auditStore(db);
    if (missing.length > 0) {
      log.error({ verified, missing }, 'store audit: accepted events are not stored (or are in the DLQ)');
      process.exitCode = 1;
    } else log.info({ verified }, 'store audit: every sampled accepted event is stored');
  }
  if (command === 'maintain') {
    const { created, dropped } = await maintainPartitions(db, {
      retentionDays: config.eventRetentionDays,
      // Every month an accepted event can name ahead, and the one the consumer's grace can reach.
      monthsAhead: Math.max(3, config.eventTime.monthsAhead + 1),
    });
    log.info(
      { created, dropped, retentionDays: config.eventRetentionDays },
      created.length + dropped.length > 0 ? 'partitions maintained' : 'nothing to do',
    );
  } else if (command !== 'audit') {
    const names =
      command === 'latest'
        ? await migrateLatest(db, config.database.url)
        : await migrateRollback(db, config.database.url);
    log.info({ command, migrations: names }, names.length > 0 ? 'migrations done' : 'nothing to do');
  }
} catch (err) {
  log.error(
    { err, command },
    command === 'latest' || command === 'rollback' ? 'migration failed' : 'maintenance failed',
  );
  process.exitCode = 1;
} finally {
  await db.destroy();
}
