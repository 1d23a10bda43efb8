// Retention maths: which backup rows may be deleted and until when, pure (no I/O, no clock); the expire job
// reads the rows and deletes them. The binlogs the oldest kept full backup needs to roll forward are kept.
// May import: binlog, time.
export { planExpiry, daysLeft, expiresAt, defaultRetentionPolicy } from './plan.ts';
export type { BackupType, RetentionRow, RetentionPolicy, ExpiryDecision } from './plan.ts';
