// /metrics in the Prometheus text exposition format (version 0.0.4), from the metadata center and Redis.
import { scheduledJobTypes as outcomeTypes } from '../config/index.ts';
import type { FailureCount } from '../metadata/job-outcomes.ts';
import type { InstanceStatus } from '../ops/status.ts';

export interface MetricsInput {
  statuses: InstanceStatus[];
  counts: Array<{ instance: string; type: string; state: string; count: number }>;
  /** Jobs that failed for good, per instance and type (mcb_job_outcomes: only ever incremented). */
  failures?: FailureCount[];
  queueCounts: Array<{ queue: string; counts: Record<string, number> }>;
}

function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labels(l: Record<string, string>): string {
  return `{${Object.entries(l).map(([k, v]) => `${k}="${label(v)}"`).join(',')}}`;
}

export function renderMetrics(input: MetricsInput): string {
  const out: string[] = [];
  const family = (name: string, type: 'gauge' | 'counter', help: string, samples: Array<[Record<string, string>, number]>) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [l, v] of samples) out.push(`${name}${labels(l)} ${Number.isFinite(v) ? v : 'NaN'}`);
  };
  const last: Array<[InstanceStatus, 'full' | 'binlog']> = input.statuses.flatMap((s) => [[s, 'full'], [s, 'binlog']] as Array<[InstanceStatus, 'full' | 'binlog']>);
  const of = (s: InstanceStatus, t: 'full' | 'binlog') => (t === 'full' ? s.lastFull : s.lastBinlog);

  family('mcb_instance_info', 'gauge', 'Instances in tb_instance (value 1); enabled is is_clone.', input.statuses.map((s) => [
    { instance: String(s.id), instance_id: s.instanceId, name: s.instanceName, enabled: s.enabled ? '1' : '0' }, 1,
  ]));
  family('mcb_last_success_timestamp_seconds', 'gauge', 'Unix time of the last Completed backup per instance and type (end_time, the recovery point).',
    last.filter(([s, t]) => of(s, t)).map(([s, t]) => [{ instance: String(s.id), type: t }, Date.parse(of(s, t)!.at) / 1000]));
  family('mcb_last_backup_duration_seconds', 'gauge', 'Duration of the last Completed backup per instance and type (start_time to completion).',
    last.filter(([s, t]) => of(s, t)?.durationSeconds != null).map(([s, t]) => [{ instance: String(s.id), type: t }, of(s, t)!.durationSeconds!]));
  family('mcb_last_backup_bytes', 'gauge', 'Stored size in bytes of the last Completed backup per instance and type.',
    last.filter(([s, t]) => of(s, t)?.bytes != null).map(([s, t]) => [{ instance: String(s.id), type: t }, of(s, t)!.bytes!]));
  family('mcb_backup_stale', 'gauge', '1 when there is no Completed backup (for binlog: nor successful binlog run) newer than the [server] stale threshold.',
    last.map(([s, t]) => [{ instance: String(s.id), type: t }, (t === 'full' ? s.fullStale : s.binlogStale) ? 1 : 0]));
  family('mcb_backups_running', 'gauge', 'Backup rows in a running state per instance.',
    input.statuses.map((s) => [{ instance: String(s.id) }, s.running.length]));

  // Every instance and type from zero, so that the first failure is an increase Prometheus sees.
  const failures = new Map<string, number>();
  for (const s of input.statuses) for (const t of outcomeTypes) failures.set(`${s.id}\t${t}`, 0);
  for (const f of input.failures ?? []) failures.set(`${f.instance}\t${f.type}`, f.failures);
  family('mcb_backup_failures_total', 'counter', 'Jobs that failed for good (last attempt or a permanent error) per instance and type: full (any stage), binlog, expire, verify. Never decreases.',
    [...failures].map(([k, v]) => { const [instance, type] = k.split('\t') as [string, string]; return [{ instance, type }, v]; }));
  family('mcb_binlog_last_check_timestamp_seconds', 'gauge', 'Unix time of the last binlog run that left every closed binlog archived (also when there was nothing new).',
    input.statuses.filter((s) => s.lastBinlogCheck).map((s) => [{ instance: String(s.id) }, Date.parse(s.lastBinlogCheck!.at) / 1000]));
  family('mcb_binlog_rpo_seconds', 'gauge', 'Achieved RPO: seconds since the bucket last held every transaction the server had written (from the binlog stream, else the binlog job); absent when unknown.',
    input.statuses.filter((s) => s.rpo.seconds !== null).map((s) => [{ instance: String(s.id) }, s.rpo.seconds!]));
  family('mcb_binlog_rpo_threshold_seconds', 'gauge', '[backup-conf] max_rpo_seconds: the achieved RPO above which mcb status alerts (with binlog_stream on).',
    input.statuses.map((s) => [{ instance: String(s.id) }, s.rpo.thresholdSeconds]));
  family('mcb_binlog_stream_up', 'gauge', '1 when the binlog streamer is streaming, 0 when it is reconnecting, in a gap or stopped (instances with a streamer row only).',
    input.statuses.filter((s) => s.rpo.stream).map((s) => [{ instance: String(s.id) }, s.rpo.stream!.state === 'streaming' ? 1 : 0]));
  family('mcb_backup_verify_failed', 'gauge', 'Completed full backups still stored whose restore test failed, per instance (never used for restores).',
    input.statuses.map((s) => [{ instance: String(s.id) }, s.verifyFailures.length]));
  family('mcb_backups', 'gauge', 'Rows of full_backup_metadata per instance, type and state.',
    input.counts.map((c) => [{ instance: c.instance, type: c.type, state: c.state }, c.count]));
  family('mcb_queue_jobs', 'gauge', 'Jobs per BullMQ instance queue and state.',
    input.queueCounts.flatMap((q) => Object.entries(q.counts).map(([state, n]) => [{ queue: q.queue, state }, n] as [Record<string, string>, number])));
  return `${out.join('\n')}\n`;
}
