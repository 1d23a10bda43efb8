// What an expire run did, per instance and in total: the job's result, `mcb enqueue expire`'s output.
import type { RetentionPolicy } from '../../retention/index.ts';

export type DecisionOutcome =
  | 'kept'
  | 'deleted'
  | 'would-delete'
  | 'delete-failed'
  | 'changed-concurrently'
  | 'other-bucket'
  /** The row expired, its object stayed: another live row uses the same object. */
  | 'expired-object-kept';

export interface ExpireDecisionReport {
  id: number;
  backupUuid: string;
  name: string;
  objectKey: string;
  type: string;
  state: string;
  startTime: string | null;
  action: 'delete' | 'keep';
  reason: string;
  daysLeft: number;
  /** The overdue_day written (or, in a dry run, that would be written); null when the row is not touched. */
  overdueDay: number | null;
  outcome: DecisionOutcome;
  error?: string;
}

export interface OrphanReport {
  key: string;
  size: number;
  lastModified: string | null;
  instanceId: number;
  reason: string;
}

export interface InstanceExpiryReport {
  instanceId: number;
  policy: RetentionPolicy;
  policySource: 'config' | 'mcb_instance_retention';
  decisions: ExpireDecisionReport[];
  /** Rows whose overdue_day changed in this run. */
  overdueUpdated: number;
  deleted: number;
  failed: number;
  orphans: OrphanReport[];
  /** Set when this instance could not be processed at all (bad override, metadata error, listing failed). */
  error?: string;
}

export interface ExpireResult {
  dryRun: boolean;
  now: string;
  bucket: string;
  instances: InstanceExpiryReport[];
  /** bak_/log_ objects of instances with no row in this bucket at all (only when run for every instance). */
  orphans: OrphanReport[];
  /** The whole-bucket scan (runs without an instance id) failed. */
  scanError?: string;
  deleted: number;
  wouldDelete: number;
  failed: number;
  orphanCount: number;
}

/** Thrown after every instance was processed when a delete (or a whole instance) failed; carries the result. */
export class ExpireFailedError extends Error {
  constructor(
    message: string,
    readonly result: ExpireResult,
  ) {
    super(message);
  }
}

/** An instance's report before anything was done. */
export function emptyInstanceReport(
  instanceId: number,
  policy: RetentionPolicy,
  policySource: InstanceExpiryReport['policySource'],
): InstanceExpiryReport {
  return { instanceId, policy, policySource, decisions: [], overdueUpdated: 0, deleted: 0, failed: 0, orphans: [] };
}

/** The report of an instance that could not be processed at all. */
export function failedInstanceReport(instanceId: number, error: string): InstanceExpiryReport {
  const none: RetentionPolicy = { fullDays: 0, binlogDays: 0, minFullBackups: 0, keepBinlogsForOldestFull: true };
  return { ...emptyInstanceReport(instanceId, none, 'config'), error };
}

/** Adds an instance's report to the run's result and totals. */
export function addInstanceReport(result: ExpireResult, report: InstanceExpiryReport): void {
  result.instances.push(report);
  result.deleted += report.deleted;
  result.failed += report.failed;
  result.wouldDelete += report.decisions.filter((d) => d.outcome === 'would-delete').length;
  result.orphanCount += report.orphans.length;
}

export function summarise(result: ExpireResult): string {
  const broken = result.instances.filter((i) => i.error);
  const parts = [
    result.dryRun ? `${result.wouldDelete} would be deleted` : `${result.deleted} deleted`,
    `${result.failed} failed`,
    `${result.orphanCount} orphan object(s)`,
  ];
  if (broken.length) parts.push(`${broken.length} instance(s) with errors: ${broken.map((i) => `${i.instanceId}: ${i.error}`).join('; ')}`);
  if (result.scanError) parts.push(result.scanError);
  return `expire${result.dryRun ? ' (dry run)' : ''} in bucket ${result.bucket}: ${parts.join(', ')}`;
}
