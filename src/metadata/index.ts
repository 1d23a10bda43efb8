// The metadata center (MySQL or MariaDB): the seed's tables (tb_instance, full_backup_metadata) and ours, their
// migrations, named locks, retries across a failover, and every query the rest of the code needs, as named
// functions: no SQL outside this folder. DATETIMEs are read and written in the one metadata time zone
// (zoned-pool.ts).
// May import: config, log, time.
export * from './states.ts';
export * from './store.ts';
export { migrate, loadMigrations, type MigrateResult } from './migrate.ts';
