// The status page at `/`: server-rendered, no scripts, refreshes itself. Every value is HTML-escaped.
import type { BackupRow } from '../metadata/index.ts';
import type { AchievedRpo } from '../ops/rpo.ts';
import { formatAge, rpoFigure, type InstanceStatus, type LastBackup } from '../ops/status.ts';
import { formatLocalTime, offsetString, UTC, type TimeZone } from '../time/zone.ts';

export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const e = escapeHtml;

function lastCell(b: LastBackup | null, stale: boolean, checked?: { ageSeconds: number } | null): string {
  const text = b ? `${e(formatAge(b.ageSeconds))} ago · ${e(b.size)}<br><small>${e(b.backupName)}</small>` : 'never';
  const check = checked ? `<br><small>all archived as of ${e(formatAge(checked.ageSeconds))} ago</small>` : '';
  return `<td class="${stale ? 'stale' : 'ok'}">${text}${check}${stale ? ' <b>STALE</b>' : ''}</td>`;
}

/** The achieved RPO and its source, red when over max_rpo_seconds or the stream has a gap; the stream's state and, when not streaming, its error. */
function rpoCell(r: AchievedRpo): string {
  const alert = r.exceeded || r.gap;
  const within = r.seconds !== null && r.seconds <= r.thresholdSeconds;
  const flags = `${r.exceeded ? ` <b>OVER ${e(r.thresholdSeconds)} s</b>` : ''}${r.gap ? ' <b>GAP</b>' : ''}`;
  const stream = r.stream
    ? `<br><small>stream ${e(r.stream.state)}${r.stream.state !== 'streaming' && r.stream.lastError ? `: ${e(r.stream.lastError)}` : ''}</small>`
    : '';
  return `<td class="${alert ? 'stale' : within ? 'ok' : ''}">${e(rpoFigure(r))}${flags}${stream}</td>`;
}

function verifyCell(s: InstanceStatus): string {
  return s.verifyFailures
    .map((v) => `<br><b>restore test FAILED</b>: ${e(v.backupName)}${v.reason ? ` <small>${e(v.reason)}</small>` : ''}`)
    .join('');
}

export function renderStatusPage(opts: {
  statuses: InstanceStatus[];
  backups: BackupRow[];
  generatedAt: Date;
  refreshSeconds: number;
  redisError?: string;
  thresholds: { fullHours: number; binlogMinutes: number };
  /** The metadata time zone every time on the page is written in (UTC when absent). */
  timeZone?: TimeZone;
}): string {
  const zone = opts.timeZone ?? UTC;
  const instanceRows = opts.statuses
    .map((s) => {
      const running = s.running
        .map((r) => {
          const progress = r.progressPercent === null ? '' : ` <span class="progress">${e(r.stage)} ${e(r.progressPercent)}%</span>`;
          return `${e(r.backupType)} ${e(r.state)}${progress}${r.info ? ` <small>${e(r.info)}</small>` : ''}`;
        })
        .join('<br>');
      const next = s.schedules === null ? 'unknown' : s.schedules.map((x) => `${e(x.name)} ${e(x.next ? formatLocalTime(new Date(x.next), zone) : '?')}`).join('<br>') || 'none';
      return `<tr${s.enabled ? '' : ' class="disabled"'}>
  <td>${e(s.id)}</td><td>${e(s.instanceId)}<br><small>${e(s.instanceName)}</small></td><td>${s.enabled ? 'yes' : 'no'}</td>
  ${lastCell(s.lastFull, s.fullStale)}${lastCell(s.lastBinlog, s.binlogStale, s.lastBinlogCheck)}${rpoCell(s.rpo)}
  <td>${running || ''}</td><td>${next}</td><td class="${s.failures24h || s.verifyFailures.length ? 'error' : ''}">${e(s.failures24h)}${verifyCell(s)}</td></tr>`;
    })
    .join('\n');
  const backupRows = opts.backups
    .map(
      (b) => `<tr class="state-${e(b.state)}${b.state === 'Error' ? ' error' : ''}">
  <td>${e(b.id)}</td><td>${e(b.tbInstanceId)}</td><td>${e(b.backupType)}</td><td class="state">${e(b.state)}</td>
  <td>${e(formatLocalTime(b.startTime, zone))}</td><td>${e(formatLocalTime(b.endTime, zone))}</td><td>${e(b.backupSize)}</td><td>${e(b.backupName)}</td><td>${e(b.info ?? '')}</td></tr>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="${e(opts.refreshSeconds)}">
<title>mcb backup status</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin-bottom:2em}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}small{color:#666}.stale,.error{background:#fde2e2;color:#900}.ok{background:#e6f6e6}.progress{font-weight:bold}
tr.disabled{color:#999}.banner{background:#fde2e2;padding:.5em;border:1px solid #e99}
</style></head><body>
<h1>mcb backup status</h1>
<p>Generated ${e(formatLocalTime(opts.generatedAt, zone))}; times in ${e(zone.name)}${zone.kind === 'iana' ? ` (${e(offsetString(opts.generatedAt, zone))})` : ''}; refreshes every ${e(opts.refreshSeconds)} s. STALE: no Completed backup newer than
${e(opts.thresholds.fullHours)} h (full) or ${e(opts.thresholds.binlogMinutes)} min (binlog). RPO: since when the bucket holds every
transaction, from the binlog stream or the binlog job; OVER past max_rpo_seconds when binlog_stream is on. <a href="queues">Queues (bull-board)</a> · <a href="metrics">metrics</a></p>
${opts.redisError ? `<p class="banner">Redis: ${e(opts.redisError)}</p>` : ''}
<h2>Instances</h2>
<table id="instances"><thead><tr><th>id</th><th>instance</th><th>backups on</th><th>last full</th><th>last binlog</th><th>RPO</th><th>running</th><th>next runs</th><th>failures 24 h</th></tr></thead>
<tbody>
${instanceRows || '<tr><td colspan="9">no instances in tb_instance</td></tr>'}
</tbody></table>
<h2>Recent backups</h2>
<table id="backups"><thead><tr><th>id</th><th>instance</th><th>type</th><th>state</th><th>start</th><th>end</th><th>size</th><th>name</th><th>info</th></tr></thead>
<tbody>
${backupRows || '<tr><td colspan="9">no backups yet</td></tr>'}
</tbody></table>
</body></html>
`;
}
