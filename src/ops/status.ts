// What `mcb status`, the status page, /api/instances and /metrics report: per instance, the last Completed
// full and binlog backup with their age, the achieved RPO (rpo.ts), what is running, the next scheduled runs and
// recent failures.
// The metadata center is the source of truth; Redis adds schedules, queue depths and the running stage's
// progress (the stage job's updateProgress) when it answers. Also which counter a failed job counts under
// (outcomes.ts). Shared by the worker, the server and the CLI, so none of them imports another.
// May import: queues, jobs, metadata, config, time.
import type { Queue } from 'bullmq';
import type { Config } from '../config/index.ts';
import { stageOfState, type BackupRow, type FullStage, type InstanceRow, type MetadataStore } from '../metadata/index.ts';
import {
  errorCountsSince,
  newestCompletedBinlogs,
  newestErrors,
  newestRestorableFulls,
  runningBackups,
  verifyFailedFulls,
} from '../metadata/status-queries.ts';
import { lastBinlogChecks } from '../metadata/job-outcomes.ts';
import { streamStatuses } from '../metadata/binlog-segments.ts';
import { fullStageJobId, instanceQueueName, type Queues } from '../queues/index.ts';
import { isoOrNull } from '../time/zone.ts';
import { achievedRpo, ageSeconds, type AchievedRpo } from './rpo.ts';

export interface LastBackup {
  id: number;
  backupName: string;
  /** When the backup's data is from: end_time (the clone recovery point), else the moment it completed. */
  at: string;
  ageSeconds: number;
  durationSeconds: number | null;
  bytes: number | null;
  size: string;
  stale: boolean;
}

export interface ScheduledRun {
  name: string;
  next: string | null;
  pattern: string | null;
}

export interface InstanceStatus {
  id: number;
  instanceId: string;
  instanceName: string;
  enabled: boolean;
  queue: string;
  lastFull: LastBackup | null;
  lastBinlog: LastBackup | null;
  /** The last binlog run that left every closed binlog archived (one that found nothing new included); null when
   * none is recorded. An idle server rotates rarely: its binlog backup is as fresh as this check. */
  lastBinlogCheck: { at: string; ageSeconds: number } | null;
  /** Nothing, or a Completed one older than the threshold. */
  fullStale: boolean;
  /** Neither a binlog check nor a Completed binlog newer than the threshold. */
  binlogStale: boolean;
  /** How long ago the bucket last held every transaction the server had written, and from what that is known. */
  rpo: AchievedRpo;
  running: RunningBackup[];
  failures24h: number;
  lastFailure: { id: number; backupName: string; at: string; info: string | null } | null;
  /** Completed full backups still in storage whose restore test failed: failures, never restore candidates. */
  verifyFailures: Array<{ id: number; backupName: string; verifiedAt: string | null; reason: string | null }>;
  /** null when Redis did not answer. */
  schedules: ScheduledRun[] | null;
  /** Job counts by state in the instance queue; null when Redis did not answer. */
  queueCounts: Record<string, number> | null;
}

export interface RunningBackup {
  id: number;
  backupType: string;
  state: string;
  backupName: string;
  info: string | null;
  since: string | null;
  /** The full-backup stage the row's state belongs to (Doing → clone, Done/Tar → tar, …); null for binlog rows. */
  stage: FullStage | null;
  /** That stage job's progress in whole percent (job `<backup uuid>-<stage>` in the instance queue); null when it
   * reported none yet, or Redis did not answer. */
  progressPercent: number | null;
}

/** A stage job's progress as a fraction 0..1: stages report `{ stage, fraction }`, plain numbers are percent. */
export function progressFraction(progress: unknown): number | undefined {
  const f = typeof progress === 'number' ? progress / 100 : (progress as { fraction?: unknown } | null | undefined)?.fraction;
  return typeof f === 'number' && Number.isFinite(f) ? Math.min(1, Math.max(0, f)) : undefined;
}

/** Whole percent, rounded down (no 100% before the stage ends), tolerant of 0.29 * 100 = 28.999…. */
export function progressPercent(fraction: number): number {
  return Math.floor(fraction * 100 + 1e-9);
}

async function stageProgress(queue: Queue | undefined, row: BackupRow): Promise<{ stage: FullStage | null; progressPercent: number | null }> {
  const stage = row.backupType === 'full' ? (stageOfState(row.state) ?? null) : null;
  if (!stage || !queue) return { stage, progressPercent: null };
  try {
    const job = await queue.getJob(fullStageJobId(row, stage));
    const f = progressFraction(job?.progress);
    return { stage, progressPercent: f === undefined ? null : progressPercent(f) };
  } catch {
    return { stage, progressPercent: null }; // Redis went away mid-request: the metadata part still stands
  }
}

/** "4s (stream)", "25m (binlog job)", "unknown": the achieved RPO as the CLI and the page write it. */
export function rpoFigure(r: AchievedRpo): string {
  return r.seconds === null ? 'unknown' : `${formatAge(r.seconds)} (${r.source})`;
}

/** Why a streaming instance's RPO is what it is: its streamer's state and error, or that it has no streamer row. */
function streamNote(r: AchievedRpo): string {
  if (!r.stream) return '; no binlog stream row (is a worker with binlog_stream = on running?)';
  if (r.stream.state === 'streaming') return `; stream streaming, row updated ${formatAge(r.stream.updatedAgeSeconds)} ago`;
  return `; stream ${r.stream.state}${r.stream.lastError ? `: ${oneLine(r.stream.lastError)}` : ''}`;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ');
}

/**
 * What `mcb status --check` complains about: enabled instances that are STALE, failed in the last 24 h, or (with
 * binlog_stream on) whose binlog stream has a gap or whose achieved RPO is over max_rpo_seconds.
 */
export function statusProblems(statuses: InstanceStatus[]): string[] {
  const out: string[] = [];
  for (const s of statuses.filter((x) => x.enabled)) {
    const who = `instance ${s.id} (${s.instanceId})`;
    const last = (b: LastBackup | null) => (b ? `last Completed ${b.backupName} ${formatAge(b.ageSeconds)} ago` : 'no Completed backup');
    if (s.fullStale) out.push(`${who}: full backup STALE (${last(s.lastFull)})`);
    if (s.binlogStale) out.push(`${who}: binlog backup STALE (${last(s.lastBinlog)})`);
    if (s.rpo.gap) out.push(`${who}: binlog stream GAP: ${oneLine(s.rpo.stream?.lastError ?? 'binlogs missing from the bucket')}`);
    if (s.rpo.exceeded) out.push(`${who}: achieved RPO ${rpoFigure(s.rpo)} over max_rpo_seconds ${s.rpo.thresholdSeconds}${streamNote(s.rpo)}`);
    for (const v of s.verifyFailures) {
      out.push(`${who}: restore test FAILED for full backup ${v.backupName}${v.verifiedAt ? ` (tested ${v.verifiedAt})` : ''}: ${(v.reason ?? '').replace(/\s+/g, ' ')}; it is not used for restores nor kept as the newest full`);
    }
    if (s.failures24h) out.push(`${who}: ${s.failures24h} failed backup(s) in the last 24 h (last: ${s.lastFailure?.backupName ?? '?'}: ${(s.lastFailure?.info ?? '').replace(/\s+/g, ' ')})`);
  }
  return out;
}

export interface StatusOptions {
  instanceId?: number;
  now?: Date;
}

function completedAt(row: BackupRow): Date {
  return row.endTime ?? row.updatedAt;
}

/**
 * Binlog coverage is as fresh as the newer of the last Completed binlog and the last successful binlog run: a run
 * that found nothing new to archive still proved every closed binlog archived, so an idle server is not STALE.
 */
export function binlogIsStale(last: LastBackup | null, check: { ageSeconds: number } | null, staleAfterSeconds: number): boolean {
  const ages = [last?.ageSeconds, check?.ageSeconds].filter((a): a is number => a !== undefined);
  return !ages.length || Math.min(...ages) > staleAfterSeconds;
}

function lastBackup(row: BackupRow | undefined, now: Date, staleAfterSeconds: number): LastBackup | null {
  if (!row) return null;
  const at = completedAt(row);
  const age = ageSeconds(at, now);
  return {
    id: row.id,
    backupName: row.backupName,
    at: at.toISOString(),
    ageSeconds: age,
    durationSeconds: row.startTime ? Math.max(0, Math.round((row.updatedAt.getTime() - row.startTime.getTime()) / 1000)) : null,
    bytes: row.backupBytes,
    size: row.backupSize,
    stale: age > staleAfterSeconds,
  };
}

/** The most running rows listed per instance. */
const RUNNING_SHOWN = 20;
/** Instance queues read from Redis at once. */
const QUEUES_AT_ONCE = 32;

/**
 * One status per instance. The metadata center is read with a fixed number of queries whatever the number of
 * instances (src/metadata/status-queries.ts); Redis, when given, is read per instance queue, a few queues at once.
 */
export async function instanceStatuses(config: Config, metadata: MetadataStore, queues: Queues | undefined, opts: StatusOptions = {}): Promise<InstanceStatus[]> {
  const now = opts.now ?? new Date();
  const only = opts.instanceId;
  const instances: InstanceRow[] = (await metadata.listInstances()).filter((i) => only === undefined || i.id === only);
  const staleFull = config.server.staleFullHours * 3600;
  const staleBinlog = config.server.staleBinlogMinutes * 60;
  const dayAgo = new Date(now.getTime() - 24 * 3600 * 1000);
  const [fulls, verifyFailed, binlogs, running, lastErrors, recentErrors, checks, streams] = await Promise.all([
    newestRestorableFulls(metadata, only),
    verifyFailedFulls(metadata, only),
    newestCompletedBinlogs(metadata, only),
    runningBackups(metadata, only),
    newestErrors(metadata, only),
    errorCountsSince(metadata, dayAgo, only),
    lastBinlogChecks(metadata, only),
    streamStatuses(metadata, only),
  ]);
  const redisParts = await mapLimited(instances, QUEUES_AT_ONCE, (i) => queueStatus(queues?.queue(instanceQueueName(i.id)), running.get(String(i.id)) ?? []));
  return instances.map((i, n): InstanceStatus => {
    const key = String(i.id);
    const lastFull = lastBackup(fulls.get(key), now, staleFull);
    const lastBinlog = lastBackup(binlogs.get(key), now, staleBinlog);
    const checkedAt = checks.get(key);
    const lastBinlogCheckStatus = checkedAt ? { at: checkedAt.toISOString(), ageSeconds: ageSeconds(checkedAt, now) } : null;
    const binlogStale = binlogIsStale(lastBinlog, lastBinlogCheckStatus, staleBinlog);
    if (lastBinlog) lastBinlog.stale = binlogStale;
    const rpo = achievedRpo(config.backup, { stream: streams.get(i.id), lastArchivedEnd: lastBinlog ? new Date(lastBinlog.at) : null, lastCheck: checkedAt ?? null, now });
    const lastError = lastErrors.get(key);
    const { schedules, queueCounts, running: runningNow } = redisParts[n]!;
    return {
      id: i.id,
      instanceId: i.instanceId,
      instanceName: i.instanceName,
      enabled: i.isClone,
      queue: instanceQueueName(i.id),
      lastFull,
      lastBinlog,
      lastBinlogCheck: lastBinlogCheckStatus,
      fullStale: !lastFull || lastFull.stale,
      binlogStale,
      rpo,
      running: runningNow,
      failures24h: recentErrors.get(key) ?? 0,
      lastFailure: lastError ? { id: lastError.id, backupName: lastError.backupName, at: lastError.updatedAt.toISOString(), info: lastError.info } : null,
      verifyFailures: (verifyFailed.get(key) ?? []).map((r) => ({
        id: r.id,
        backupName: r.backupName,
        verifiedAt: isoOrNull(r.verifiedAt),
        reason: r.errorDetail?.replace(/^verify: /, '') ?? r.info,
      })),
      schedules,
      queueCounts,
    };
  });
}

/** What Redis adds to an instance's status: its schedules, job counts and the running stages' progress. */
async function queueStatus(
  q: Queue | undefined,
  rows: BackupRow[],
): Promise<Pick<InstanceStatus, 'schedules' | 'queueCounts' | 'running'>> {
  let schedules: ScheduledRun[] | null = null;
  let queueCounts: Record<string, number> | null = null;
  if (q) {
    schedules = (await q.getJobSchedulers()).map((s) => ({
      name: s.name,
      next: isoOrNull(s.next || null), // 0: no next run
      pattern: s.pattern ?? (s.every ? `every ${s.every} ms` : null),
    }));
    queueCounts = await q.getJobCounts('active', 'waiting', 'delayed', 'failed', 'completed', 'waiting-children', 'prioritized');
  }
  const running = await Promise.all(
    rows.slice(0, RUNNING_SHOWN).map(async (r) => ({
      id: r.id,
      backupType: r.backupType,
      state: r.state,
      backupName: r.backupName,
      info: r.info,
      since: isoOrNull(r.stageStartedAt) ?? isoOrNull(r.startTime),
      ...(await stageProgress(q, r)),
    })),
  );
  return { schedules, queueCounts, running };
}

/** fn over items, at most `limit` at a time, results in the items' order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const n = next++;
      out[n] = await fn(items[n]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

/** "3d 4h", "12m", "45s": ages a DBA reads at a glance. */
export function formatAge(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86400)}d ${Math.floor((seconds % 86400) / 3600)}h`;
}
