export * from './states.ts';
export * from './store.ts';
export { migrate, loadMigrations, type MigrateResult } from './migrate.ts';
