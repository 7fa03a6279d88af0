// Least-privilege database access, run with the app image as `node --input-type=module -e <this
// file>` by a hook Job after the migrations (the image has no shell; `pg` is one of its modules).
// Connected as the migration role (DATABASE_URL, the owner of ingesta's tables), it makes sure
//   - a NOLOGIN group role (INGESTA_APP_GROUP) may read and write the rows of ingesta's tables and
//     use their sequences, now and for tables later migrations create, and nothing else: no DDL,
//     no access to the migration bookkeeping;
//   - the login role of DATABASE_APP_URL (the URL the API and consumer connect with) exists, has
//     that URL's password, belongs to the group, and can create nothing.
// Every statement is idempotent: it runs on every install and upgrade.
import pg from 'pg';

const appUrl = new URL(process.env.DATABASE_APP_URL ?? '');
const appUser = decodeURIComponent(appUrl.username);
const appPassword = decodeURIComponent(appUrl.password);
const group = process.env.INGESTA_APP_GROUP || 'ingesta_app';
const migrationTables = ['ingesta_migrations', 'ingesta_migrations_lock'];

const client = new pg.Client({
  connectionString: process.env.DATABASE_URL,
  application_name: 'ingesta-database-roles',
});
await client.connect();
try {
  const id = (name) => client.escapeIdentifier(name);
  const { owner, database } = (
    await client.query('select current_user as owner, current_database() as database')
  ).rows[0];
  // The role check first: an app URL naming the migration role is the mistake to name, with or without a password.
  if (appUser === owner) {
    throw new Error(`DATABASE_APP_URL connects as ${owner}, the migration role: give the app its own user`);
  }
  if (!appUser || !appPassword) throw new Error('DATABASE_APP_URL has no user or password');
  const roleExists = async (name) =>
    (await client.query('select 1 from pg_roles where rolname = $1', [name])).rowCount > 0;

  await client.query('begin');
  // Two hook retries never interleave.
  await client.query("select pg_advisory_xact_lock(hashtext('ingesta-database-roles'))");
  if (!(await roleExists(group))) await client.query(`create role ${id(group)} nologin`);
  if (!(await roleExists(appUser))) await client.query(`create role ${id(appUser)} login`);
  // CREATE/ALTER ROLE take no bind parameters: the password goes in as an escaped literal.
  await client.query(
    `alter role ${id(appUser)} with login inherit nocreatedb nocreaterole password ${client.escapeLiteral(appPassword)}`,
  );
  await client.query(`grant ${id(group)} to ${id(appUser)}`);

  await client.query(`grant connect, temporary on database ${id(database)} to ${id(group)}`);
  await client.query(`grant usage on schema public to ${id(group)}`);
  await client.query(`revoke create on schema public from public, ${id(group)}, ${id(appUser)}`);
  await client.query(`grant select, insert, update, delete on all tables in schema public to ${id(group)}`);
  await client.query(`grant usage, select, update on all sequences in schema public to ${id(group)}`);
  await client.query(`grant execute on all functions in schema public to ${id(group)}`);
  // Tables, sequences and functions the migration role creates later (new migrations, the monthly
  // partitions of the maintenance job) are the group's to use as well.
  const defaults = `alter default privileges for role ${id(owner)} in schema public grant`;
  await client.query(`${defaults} select, insert, update, delete on tables to ${id(group)}`);
  await client.query(`${defaults} usage, select, update on sequences to ${id(group)}`);
  await client.query(`${defaults} execute on functions to ${id(group)}`);
  for (const table of migrationTables) {
    if ((await client.query('select to_regclass($1) as name', [table])).rows[0].name) {
      await client.query(`revoke all on ${id(table)} from ${id(group)}`);
    }
  }
  await client.query('commit');
  process.stdout.write(`database roles: ${appUser} in ${group}, DML on the tables of ${database}\n`);
} catch (error) {
  await client.query('rollback').catch(() => undefined);
  throw error;
} finally {
  await client.end();
}
