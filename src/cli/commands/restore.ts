// `mcb restore plan|run`: point-in-time restore (issue 6). Exit codes: 0 done, 1 refused by the plan or the
// restore failed, 2 bad usage (bad time, non-empty --datadir).
import type { Command } from 'commander';
import { MinioObjectStore, type ObjectStore } from '../../storage/index.ts';
import { candidatesFromBucket } from '../../restore/bucket.ts';
import { candidatesFromRows, describeTarget, formatLocal, parseTarget, planRestore, type RestorePlan } from '../../restore/plan.ts';
import { resolveRestoreBinaries } from '../../restore/binaries.ts';
import { runRestore, type RestoreBinaries } from '../../restore/run.ts';
import { parseId, UsageError, type CliContext, type Run } from '../context.ts';

interface PlanOptions {
  instance: string;
  at: string;
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

async function buildPlan(ctx: CliContext, o: PlanOptions): Promise<{ plan: RestorePlan; warnings: string[]; storeFor: (b: string | undefined) => ObjectStore }> {
  const instanceId = parseId(o.instance);
  const target = parseTarget(o.at ?? '');
  if (!target) throw new UsageError(`--at must be 'YYYY-MM-DD HH:MM:SS' (local time) or latest, got "${o.at}"`);
  const storeFor = storesOf(ctx, o.bucket);
  if (o.fromBucket) {
    const store = storeFor(undefined);
    await store.checkBucket();
    const { fulls, binlogs, warnings } = await candidatesFromBucket(store, instanceId);
    const plan = planRestore({ fulls, binlogs, target, backup: o.backup });
    if (!plan.full.endTimeExact) warnings.push(`the recovery point of ${plan.full.objectKey} is an estimate`);
    return { plan, warnings: warnings.filter((w) => !w.includes('mcb-recovery-point') || w.startsWith(plan.full.objectKey)), storeFor };
  }
  await ctx.instance(instanceId);
  const rows = await (await ctx.metadata()).listBackups({ instanceId, limit: 1_000_000 });
  return { plan: planRestore({ ...candidatesFromRows(rows), target, backup: o.backup }), warnings: [], storeFor };
}

function planJson(plan: RestorePlan) {
  return {
    target: describeTarget(plan.target),
    coveredUntil: formatLocal(plan.coveredUntil),
    full: { ...plan.full, recoveryPoint: formatLocal(plan.full.endTime) },
    binlogs: plan.binlogs.map((b) => ({ ...b, start: formatLocal(b.startTime), end: b.endTime ? formatLocal(b.endTime) : null })),
  };
}

function printPlan(plan: RestorePlan): void {
  const f = plan.full;
  console.log(`target:        ${describeTarget(plan.target)}`);
  console.log(`full backup:   ${f.objectKey}  recovery point ${formatLocal(f.endTime)}${f.endTimeExact ? '' : ' (estimated)'}  ${f.bytes ?? '?'} bytes  sha256 ${f.sha256 ?? '-'}`);
  if (!plan.binlogs.length) console.log('binlogs:       none needed');
  for (const b of plan.binlogs) {
    console.log(`binlog:        ${b.file}  ${formatLocal(b.startTime)} .. ${b.endTime ? formatLocal(b.endTime) : '?'}  ${b.objectKey}  ${b.bytes ?? '?'} bytes  sha256 ${b.sha256 ?? '-'}`);
  }
  console.log(`covered until: ${formatLocal(plan.coveredUntil)}`);
}

/** Flags, then MCB_SID_ROOT / MCB_MYSQLD, then [restore], then PATH (src/restore/binaries.ts). */
function binariesOf(ctx: CliContext, o: { mysqld?: string; sidRoot?: string; mysqlbinlog?: string; mysql?: string }): RestoreBinaries {
  if (o.mysqld && o.sidRoot) throw new UsageError('give --mysqld or --sid-root, not both');
  return resolveRestoreBinaries(ctx.config.restore, { sidRoot: o.sidRoot, mysqld: o.mysqld, mysqlbinlog: o.mysqlbinlog, mysql: o.mysql }).binaries;
}

export function registerRestore(program: Command, run: Run): void {
  const restore = program.command('restore').description('point-in-time restore from a full backup and archived binlogs');
  const common = (c: Command) =>
    c
      .requiredOption('--instance <id>', 'tb_instance id')
      .requiredOption('--at <time>', "'YYYY-MM-DD HH:MM:SS' (local time) or latest")
      .option('--from-bucket', 'plan from the objects in the bucket, without the metadata center')
      .option('--bucket <name>', 'bucket to read (default [backup-conf] bucket_name)')
      .option('--backup <name>', 'restore from this full backup (object key, backup_name or uuid), even one whose restore test failed');

  common(restore.command('plan').description('which full backup and binlogs restore to a time, or why it cannot be done'))
    .option('--json', 'print JSON')
    .action((o) =>
      run(async (ctx) => {
        const { plan, warnings } = await buildPlan(ctx, o);
        for (const w of warnings) console.error(`warning: ${w}`);
        if (o.json) console.log(JSON.stringify(planJson(plan), null, 2));
        else printPlan(plan);
      }),
    );

  common(restore.command('run').description('restore into an empty datadir, replay binlogs to the target, stop'))
    .requiredOption('--datadir <dir>', 'empty (or new) directory for the restored datadir')
    .option('--mysqld <path>', 'mysqld binary (env MCB_MYSQLD, [restore] mysqld; default mysqld on PATH)')
    .option('--sid-root <dir>', 'a Debian root holding mysqld, mysqlbinlog and mysql (env MCB_SID_ROOT, [restore] sid_root)')
    .option('--mysqlbinlog <path>', 'with --mysqld: mysqlbinlog binary ([restore] mysqlbinlog; default on PATH)')
    .option('--mysql <path>', 'with --mysqld: mysql client binary ([restore] mysql; default on PATH)')
    .option('--port <port>', 'port for the temporary mysqld (default: a free one)')
    .option('--user <user>', 'account of the restored server used to replay binlogs (default [restore] user, root); password: MCB_RESTORE_PASSWORD or [restore] password')
    .option('--json', 'print the result as JSON')
    .action((o) =>
      run(async (ctx) => {
        const binaries = binariesOf(ctx, o);
        const port = o.port ? parseId(o.port, '--port') : undefined;
        const { plan, warnings, storeFor } = await buildPlan(ctx, o);
        for (const w of warnings) console.error(`warning: ${w}`);
        if (!o.json) printPlan(plan);
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
            port,
            user: o.user ?? ctx.config.restore.user,
            password: ctx.config.restore.password,
            log: (m) => console.error(m),
            signal: interrupt.signal,
          });
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
        if (o.json) {
          console.log(JSON.stringify({ ...result, lastTransactionTime: formatLocal(result.lastTransactionTime) }, null, 2));
          return;
        }
        console.log(`restored into:    ${result.datadir}`);
        console.log(`binlogs applied:  ${result.binlogsApplied.join(', ') || 'none'}${result.stopPosition ? ` (last one up to position ${result.stopPosition})` : ''}`);
        console.log(`last transaction: ${formatLocal(result.lastTransactionTime)}${result.lastTransactionGtid ? ` (${result.lastTransactionGtid})` : ''}`);
        console.log(`gtid_executed:    ${result.gtidExecuted}`);
      }),
    );
}
