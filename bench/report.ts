// The bench's printed table, and the project's performance targets (docs/performance.md) as ratios of this run's
// figures (never pass/fail).
import type { Measured } from './child.ts';

interface RowOptions {
  /** Source bytes the step stands for (the datadir, or the binlog): the MB/s column. */
  sourceBytes?: number;
  /** Bytes written or sent (the archive, the object): the ratio column. */
  bytes?: number;
  /** Also note the object's own MB/s (uploads, verification). */
  objectRate?: boolean;
  /** A step of the mcb worker: its peak RSS counts for the memory target. */
  worker?: boolean;
  notes?: string;
}

interface Row extends RowOptions {
  label: string;
  seconds: number;
  maxRssMiB?: number;
}

const widths = [56, 9, 9, 7, 9];

function line(cells: string[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[0]!) : i < widths.length ? c.padStart(widths[i]!) : `  ${c}`)).join(' ').trimEnd();
}

const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const mb = (bytes: number) => bytes / 1e6;

export class Report {
  private readonly rows = new Map<string, Row>();
  private headerDue = false;

  section(title: string): void {
    console.log(`\n${title}`);
    this.headerDue = true;
  }

  /** The column names, before the first row of a section (log lines may come between the title and it). */
  private header(): void {
    if (!this.headerDue) return;
    this.headerDue = false;
    console.log(line(['step', 'seconds', 'MB/s', 'ratio', 'RSS MiB', 'notes']));
  }

  row(id: string, label: string, m: Measured, opts: RowOptions = {}): void {
    this.header();
    const row: Row = { ...opts, label, seconds: m.seconds, maxRssMiB: m.maxRssMiB };
    this.rows.set(id, row);
    const notes = [opts.objectRate && opts.bytes ? `object ${fmt(mb(opts.bytes))} MB at ${fmt(mb(opts.bytes) / m.seconds)} MB/s` : '', opts.notes ?? ''].filter(Boolean).join('; ');
    console.log(
      line([
        `  ${label}`,
        fmt(m.seconds),
        opts.sourceBytes ? fmt(mb(opts.sourceBytes) / m.seconds) : '-',
        opts.sourceBytes && opts.bytes ? (opts.sourceBytes / opts.bytes).toFixed(2) : '-',
        m.maxRssMiB === undefined ? '-' : m.maxRssMiB.toFixed(0),
        notes,
      ]),
    );
  }

  skip(label: string, why: string): void {
    this.header();
    console.log(line([`  ${label}`, '-', '-', '-', '-', `not run: ${why}`]));
  }

  private seconds(id: string): number | undefined {
    return this.rows.get(id)?.seconds;
  }

  /** The whole zstd backup as the worker's stages run it, next to the same steps with the CLIs. */
  whole(cloneSeconds: number, defaultVerify: string): void {
    const ours = [cloneSeconds, this.seconds('mcb-zstd'), this.seconds('upload-mcb-zstd'), this.seconds(`verify-${defaultVerify}`)];
    const cli = [cloneSeconds, this.seconds('tar-zstd'), this.seconds('upload-tar-zstd')];
    console.log('\nWHOLE BACKUP (sums of the rows above: the stages run one after the other)');
    if (ours.some((s) => s === undefined) || cli.some((s) => s === undefined)) {
      console.log('  not computed: needs the zstd codec and the clone, archive and upload rows of both pipelines');
      return;
    }
    const sum = (xs: Array<number | undefined>) => xs.reduce<number>((a, b) => a + b!, 0);
    const a = sum(ours);
    const b = sum(cli);
    this.rows.set('whole-mcb', { label: 'whole mcb', seconds: a });
    this.rows.set('whole-cli', { label: 'whole cli', seconds: b });
    const parts = (xs: Array<number | undefined>) => xs.map((x) => fmt(x!)).join(' + ');
    console.log(`  whole backup with zstd (clone + archive + upload + verify = ${defaultVerify}): ${fmt(a)} s  (${parts(ours)})`);
    console.log(`  clone + tar -I 'zstd -T0' + upload of the same bytes:            ${fmt(b)} s  (${parts(cli)})`);
  }

  /**
   * The performance targets (archive, restore, replay and encryption speed, worker peak RSS) as ratios of this run's
   * figures; a missing figure is said so, nothing fails.
   */
  targets(opts: { restoreNote?: string } = {}): void {
    console.log('\nTARGETS as ratios of this run (figures, not pass/fail; noisy on a shared machine)');
    const faster = (label: string, slow: string, fast: string, target: string) => {
      const a = this.seconds(slow);
      const b = this.seconds(fast);
      console.log(line([`  ${label}`, a && b ? `${(a / b).toFixed(2)}×` : 'n/a', '', '', '', target]));
    };
    faster('gzip archive faster than tar -czf', 'tar-czf', 'mcb-gzip', 'target ≥ 3.5×');
    faster('gzip archive faster than tar -I pigz', 'tar-pigz', 'mcb-gzip', 'target ≥ 1.6×');
    faster('zstd archive faster than tar -czf', 'tar-czf', 'mcb-zstd', 'target ≥ 8×');
    faster("zstd archive time over tar -I 'zstd -T0 -3'", 'mcb-zstd', 'tar-zstd', 'target ≤ 1.3×');
    faster('whole zstd backup time over the CLI pipeline', 'whole-mcb', 'whole-cli', 'target ≤ 1.3×');
    const worker = [...this.rows.values()].filter((r) => r.worker && r.maxRssMiB !== undefined);
    const peak = worker.reduce<Row | undefined>((m, r) => (!m || r.maxRssMiB! > m.maxRssMiB! ? r : m), undefined);
    console.log(line(['  worker peak RSS, largest mcb step', peak ? `${peak.maxRssMiB!.toFixed(0)} MiB` : 'n/a', '', '', '', `target ≤ 300 MiB${peak ? ` (${peak.label.trim()})` : ''}`]));
    const note = opts.restoreNote ? ` (${opts.restoreNote})` : '';
    faster('gzip restore faster than before (one stream)', 'restore-gzip-before', 'restore-gzip', `target ≥ 2×${note}`);
    faster('zstd restore faster than the gzip one before', 'restore-gzip-before', 'restore-zstd', `target ≥ 2×${note}`);
    faster('applier replay faster than mysqlbinlog | mysql', 'replay-mysqlbinlog', 'replay-applier', 'target ≥ 2×');
    faster('zstd archive time with encryption over without', 'mcb-zstd-enc', 'mcb-zstd', 'target ≤ 1.10× (one run each: noisy)');
    const alone = this.seconds('encrypt-alone');
    const zstd = this.seconds('mcb-zstd');
    console.log(line(['  encryption alone, share of the zstd archive time', alone && zstd ? `${((100 * alone) / zstd).toFixed(1)} %` : 'n/a', '', '', '', 'target < 10 %']));
    faster('gzip archive time with encryption over without', 'mcb-gzip-enc', 'mcb-gzip', 'target ≤ 1.10×');
    faster('zstd restore time with encryption over without', 'restore-zstd-enc', 'restore-zstd', 'figure');
  }
}
