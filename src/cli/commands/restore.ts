// `mcb restore plan|run`: point-in-time restore. Exit codes: 0 done, 1 refused by the plan or the
// restore failed, 2 bad usage (bad time, non-empty --datadir).
import { Option, type Command } from 'commander';
import { MinioObjectStore, type ObjectStore } from '../../storage/index.ts';
import { candidatesFromBucket } from '../../restore/bucket.ts';
import {
  candidatesFromRows,
  describeTarget,
  parseTarget,
  planRestore,
  RestorePlanError,
  type BinlogCandidate,
  type FullCandidate,
  type RestorePlan,
  type RestoreTarget,
} from '../../restore/plan.ts';
import { describeSegments, segmentedCandidates, segmentsOfRows, type SegmentWarning } from '../../restore/segments.ts';
import { listBinlogSegments } from '../../metadata/binlog-segments.ts';
import { checkRestoreTools, resolveRestoreBinaries } from '../../restore/binaries.ts';
import { checkRestoreServerCanReach } from '../../restore/server.ts';
import { runRestore, type RestoreBinaries } from '../../restore/run.ts';
import { GtidSet } from '../../binlog/index.ts';
import { resolveSeedEraCandidates } from '../../restore/seed-era.ts';
import { formatLocalTime, TimeError, UTC, type TimeZone } from '../../time/zone.ts';
import { parseId, UsageError, type CliContext, type Run } from '../context.ts';

interface PlanOptions {
  instance: string;
  at?: string;
  atGtid?: string;
  inclusive?: boolean;
  fromBucket?: boolean;
  bucket?: string;
  backup?: string;
}

function storesOf(ctx: CliContext, defaultBucket?: string): (bucket: string | undefined) => ObjectStore {
  const oss = ctx.config.oss;
  if (!oss) throw new UsageError(`${ctx.config.file} has no [oss] section: object storage is needed to restore`);
  const stores = new Map<string, ObjectStore>();
  return (bucket) => {
    const name = bucket ?? defaultBucket ?? ctx.config.backup.bucketName;
    if (!name) throw new UsageError('no bucket: set [backup-conf] bucket_name or pass --bucket');
    let s = stores.get(name);
    if (!s) stores.set(name, (s = new MinioObjectStore(oss, name)));
    return s;
  };
}

/** --at in `zone`, or --at-gtid; a malformed value, or neither or both given, is bad usage. */
function parseAt(o: Pick<PlanOptions, 'at' | 'atGtid' | 'inclusive'>, zone: TimeZone): RestoreTarget {
  if ((o.at === undefined) === (o.atGtid === undefined)) throw new UsageError('give exactly one of --at TIME|latest and --at-gtid SET');
  if (o.atGtid !== undefined) {
    let set: GtidSet;
    try {
      set = GtidSet.parse(o.atGtid);
    } catch (err) {
      throw new UsageError(`--at-gtid: ${(err as Error).message}`);
    }
    if (set.isEmpty()) throw new UsageError('--at-gtid: the GTID set is empty');
    return { kind: 'gtid', gtids: set.toString(), include: Boolean(o.inclusive) };
  }
  if (o.inclusive) throw new UsageError('--inclusive goes with --at-gtid');
  const text = o.at;
  try {
    return parseTarget(text ?? '', zone);
  } catch (err) {
    if (!(err instanceof TimeError)) throw err;
    throw new UsageError(`--at: ${err.message}; give 'YYYY-MM-DD HH:MM:SS' (in the metadata time zone, or ending in Z or ±HH:MM) or latest`);
  }
}

/**
 * planRestore, with what the streamed segments' warnings (a hole, no first segment) say: on a refusal, every one of
 * them is added to its message; on a plan, those of files not older than its first binlog go to `warnings`.
 */
function planWithSegments(
  input: { fulls: FullCandidate[]; binlogs: BinlogCandidate[]; target: RestoreTarget; backup?: string; zone: TimeZone },
  segmentWarnings: SegmentWarning[],
  warnings: string[],
): RestorePlan {
  let plan: RestorePlan;
  try {
    plan = planRestore(input);
  } catch (err) {
    if (!(err instanceof RestorePlanError) || !segmentWarnings.length) throw err;
    throw new RestorePlanError(err.reason, `${err.message} (note: ${segmentWarnings.map((w) => w.message).join('; ')})`);
  }
  const from = (plan.binlogs[0]?.startTime ?? plan.full.endTime).getTime();
  warnings.push(...segmentWarnings.filter((w) => w.seriesStart * 1000 >= from).map((w) => w.message));
  return plan;
}

/** --from-bucket runs when the metadata center may be lost: then times are in this host's zone, with a warning. */
async function buildPlan(
  ctx: CliContext,
  o: PlanOptions,
): Promise<{ plan: RestorePlan; warnings: string[]; storeFor: (b: string | undefined) => ObjectStore; zone: TimeZone }> {
  const instanceId = parseId(o.instance);
  parseAt(o, UTC); // syntax first: a typo fails before any connection
  const storeFor = storesOf(ctx, o.bucket);
  const warnings: string[] = [];
  const zone = o.fromBucket ? await ctx.timeZoneOrHost((w) => warnings.push(w)) : await ctx.timeZone();
  const target = parseAt(o, zone);
  if (o.fromBucket) {
    const store = storeFor(undefined);
    await store.checkBucket();
    const found = await candidatesFromBucket(store, instanceId, zone, ctx.config.encryption);
    const plan = planWithSegments({ fulls: found.fulls, binlogs: found.binlogs, target, backup: o.backup, zone }, found.segmentWarnings, warnings);
    warnings.push(...found.warnings.filter((w) => !w.includes('mcb-recovery-point') || w.startsWith(plan.full.objectKey)));
    if (!plan.full.endTimeExact) warnings.push(`the recovery point of ${plan.full.objectKey} is an estimate`);
    return { plan, warnings, storeFor, zone };
  }
  await ctx.instance(instanceId);
  const metadata = await ctx.metadata();
  const rows = await metadata.listBackups({ instanceId, limit: 1_000_000 });
  const fromRows = candidatesFromRows(rows);
  const resolved = await resolveSeedEraCandidates(fromRows.fulls, fromRows.binlogs, storeFor);
  warnings.push(...resolved.warnings);
  // Files the streamer uploaded as segments and the binlog job has not archived whole (yet).
  const segmented = segmentedCandidates(segmentsOfRows(await listBinlogSegments(metadata, instanceId)), resolved.binlogs);
  const binlogs = [...resolved.binlogs, ...segmented.binlogs];
  const plan = planWithSegments({ fulls: resolved.fulls, binlogs, target, backup: o.backup, zone }, segmented.warnings, warnings);
  return { plan, warnings, storeFor, zone };
}

function planJson(plan: RestorePlan, zone: TimeZone) {
  const t = (d: Date) => formatLocalTime(d, zone);
  return {
    timeZone: zone.name,
    target: describeTarget(plan.target, zone),
    coveredUntil: t(plan.coveredUntil),
    full: { ...plan.full, recoveryPoint: t(plan.full.endTime) },
    binlogs: plan.binlogs.map((b) => ({
      ...b,
      start: t(b.startTime),
      end: b.endTime ? t(b.endTime) : null,
      ...(b.segments ? { segments: b.segments.map((s) => ({ ...s, lastCommitTime: s.lastCommitTime ? t(s.lastCommitTime) : null })) } : {}),
    })),
  };
}

function printPlan(plan: RestorePlan, zone: TimeZone): void {
  const t = (d: Date) => formatLocalTime(d, zone);
  const f = plan.full;
  console.log(`target:        ${describeTarget(plan.target, zone)}`);
  console.log(`full backup:   ${f.objectKey}  recovery point ${t(f.endTime)}${f.endTimeExact ? '' : ' (estimated)'}  ${f.bytes ?? '?'} bytes  sha256 ${f.sha256 ?? '-'}`);
  if (f.seedEra) console.log("               written by the seed's script: no checksum recorded; its size and gzip integrity are checked instead");
  if (!f.sha256 && !f.seedEra) console.log('               no checksum recorded for this object: its size and compression integrity are checked instead');
  if (!plan.binlogs.length) console.log('binlogs:       none needed');
  for (const b of plan.binlogs) {
    const segments = describeSegments(b, t);
    if (segments) {
      console.log(`binlog:        ${b.file}  ${t(b.startTime)} .. ${b.endTime ? t(b.endTime) : '?'}  streamed, not archived whole yet`);
      console.log(`  segments:    ${segments}`);
      const s = b.segments!;
      console.log(`               ${s[0]!.objectKey}${s.length > 1 ? ` … ${s[s.length - 1]!.objectKey}` : ''}`);
      continue;
    }
    console.log(`binlog:        ${b.file}  ${t(b.startTime)} .. ${b.endTime ? t(b.endTime) : '?'}  ${b.objectKey}  ${b.bytes ?? '?'} bytes  sha256 ${b.sha256 ?? '-'}`);
  }
  if (plan.following?.length) {
    const names = plan.following.slice(0, 3).map((b) => b.file).join(', ') + (plan.following.length > 3 ? ', …' : '');
    console.log(`then, only if the target is not passed in them: ${names} (a replica's binlog may hold earlier commits of its source)`);
  }
  console.log(`covered until: ${t(plan.coveredUntil)}  (times in ${zone.name})`);
}

/** Flags, then MCB_SID_ROOT / MCB_MYSQLD, then [restore], then PATH (src/restore/binaries.ts); checked by running
 * their --version (MySQL's, clients at least the server's version) before anything is downloaded. */
async function binariesOf(ctx: CliContext, o: { mysqld?: string; sidRoot?: string; mysqlbinlog?: string; mysql?: string }): Promise<RestoreBinaries> {
  if (o.mysqld && o.sidRoot) throw new UsageError('give --mysqld or --sid-root, not both');
  const { binaries } = resolveRestoreBinaries(ctx.config.restore, { sidRoot: o.sidRoot, mysqld: o.mysqld, mysqlbinlog: o.mysqlbinlog, mysql: o.mysql });
  await checkRestoreTools(binaries);
  return binaries;
}

export function registerRestore(program: Command, run: Run): void {
  const restore = program.command('restore').description('point-in-time restore from a full backup and archived binlogs');
  const common = (c: Command) =>
    c
      .requiredOption('--instance <id>', 'tb_instance id')
      .option('--at <time>', "'YYYY-MM-DD HH:MM:SS[.ffffff]' in the metadata time zone (or ending in Z or ±HH:MM), or latest: every transaction committed at or before it")
      .option('--at-gtid <set>', 'stop just before the first transaction of this GTID set (undo one bad transaction)')
      .option('--inclusive', 'with --at-gtid: stop just after that transaction instead')
      .option('--from-bucket', 'plan from the objects in the bucket, without the metadata center')
      .option('--bucket <name>', 'bucket to read (default [backup-conf] bucket_name)')
      .option('--backup <name>', 'restore from this full backup (object key, backup_name or uuid), even one whose restore test failed');

  common(restore.command('plan').description('which full backup and binlogs restore to a time, or why it cannot be done'))
    .option('--json', 'print JSON')
    .action((o) =>
      run(async (ctx) => {
        const { plan, warnings, zone } = await buildPlan(ctx, o);
        for (const w of warnings) console.error(`warning: ${w}`);
        if (o.json) console.log(JSON.stringify(planJson(plan, zone), null, 2));
        else printPlan(plan, zone);
      }),
    );

  common(restore.command('run').description('restore into an empty datadir, replay binlogs to the target, stop'))
    .requiredOption('--datadir <dir>', 'empty (or new) directory for the restored datadir')
    .option('--mysqld <path>', 'mysqld binary (env MCB_MYSQLD, [restore] mysqld; default mysqld on PATH)')
    .option('--sid-root <dir>', 'a Debian root holding mysqld, mysqlbinlog and mysql (env MCB_SID_ROOT, [restore] sid_root)')
    .option('--mysqlbinlog <path>', "with --mysqld: mysqlbinlog binary ([restore] mysqlbinlog; default the one beside mysqld, else PATH)")
    .option('--mysql <path>', "with --mysqld: mysql client binary ([restore] mysql; default the one beside mysqld, else PATH)")
    // Deprecated: the temporary mysqld has no TCP listener any more (unix socket only); accepted and ignored.
    .addOption(new Option('--port <port>').hideHelp())
    .option('--user <user>', 'account of the restored server used to replay binlogs (default [restore] user, root); password: MCB_RESTORE_PASSWORD or [restore] password')
    .option('--json', 'print the result as JSON')
    .action((o) =>
      run(async (ctx) => {
        if (o.port !== undefined) console.error('warning: --port is ignored: the temporary mysqld listens on its unix socket only');
        const binaries = await binariesOf(ctx, o);
        checkRestoreServerCanReach(o.datadir);
        const { plan, warnings, storeFor, zone } = await buildPlan(ctx, o);
        for (const w of warnings) console.error(`warning: ${w}`);
        if (!o.json) printPlan(plan, zone);
        // SIGINT/SIGTERM abort into the restore's failure clean-up (temporary mysqld stopped, datadir emptied or
        // removed); the error then exits 1 with one line. A second signal exits at once, clean-up unfinished.
        const interrupt = new AbortController();
        const onSignal = (sig: NodeJS.Signals) => {
          if (interrupt.signal.aborted) {
            console.error(`mcb: ${sig} again: exiting without finishing the clean-up of ${o.datadir}`);
            process.exit(1);
          }
          console.error(`${sig}: stopping the restore and cleaning up ${o.datadir}`);
          interrupt.abort(new Error(`interrupted by ${sig}`));
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        let result;
        try {
          result = await runRestore({
            plan,
            datadir: o.datadir,
            binaries,
            storeFor,
            user: o.user ?? ctx.config.restore.user,
            password: ctx.config.restore.password,
            log: (m) => console.error(m),
            signal: interrupt.signal,
            zone,
            downloadConcurrency: ctx.config.restore.downloadConcurrency,
            replayMethod: ctx.config.restore.replayMethod,
            keyring: ctx.config.encryption,
          });
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
        if (o.json) {
          console.log(JSON.stringify({ ...result, lastTransactionTime: formatLocalTime(result.lastTransactionTime, zone) }, null, 2));
          return;
        }
        console.log(`restored into:    ${result.datadir}`);
        console.log(`binlogs applied:  ${result.binlogsApplied.join(', ') || 'none'}${result.stopPosition ? ` (last one up to position ${result.stopPosition})` : ''}`);
        if (result.replayMethod) console.log(`replayed by:      ${result.replayMethod === 'applier' ? "the server's applier" : 'mysqlbinlog | mysql'}`);
        console.log(`last transaction: ${formatLocalTime(result.lastTransactionTime, zone)}${result.lastTransactionGtid ? ` (${result.lastTransactionGtid})` : ''}`);
        console.log(`gtid_executed:    ${result.gtidExecuted}`);
      }),
    );
}
