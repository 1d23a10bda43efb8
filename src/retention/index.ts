export { planExpiry, daysLeft, expiresAt, defaultRetentionPolicy } from './plan.ts';
export type { BackupType, RetentionRow, RetentionPolicy, ExpiryDecision } from './plan.ts';
