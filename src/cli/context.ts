// What every subcommand needs, created on first use and closed once at the end.
import { loadConfig, type Config } from '../config/index.ts';
import { readableKeyFileWarnings, readableSecretsWarning } from '../config/file-mode.ts';
import { createLogger, type Logger } from '../log/index.ts';
import { MetadataError, MetadataStore } from '../metadata/index.ts';
import { closeRedis, dropRedis, logRedisOutages, pingRedis, Queues, redisConnection } from '../queues/index.ts';
import { formatLocalTime, processTimeZone, UTC, type TimeZone } from '../time/zone.ts';
import { SetupError } from '../errors.ts';

/** How long an interactive command waits for a metadata center that went away mid-command. */
const interactiveRetrySeconds = 5;

/** Bad usage: exit code 2, like a bad config. */
export class UsageError extends SetupError {}

export interface GlobalOptions {
  config: string;
  debug?: boolean;
}

export class CliContext {
  private configValue?: Config;
  private metadataValue?: MetadataStore;
  private queuesValue?: Queues;
  private logValue?: Logger;
  private readonly closers: Array<() => Promise<unknown>> = [];

  constructor(readonly options: GlobalOptions) {}

  get config(): Config {
    if (!this.configValue) {
      this.configValue = loadConfig(this.options.config);
      const warning = readableSecretsWarning(this.configValue.file);
      if (warning) console.error(`warning: ${warning}`);
      for (const w of readableKeyFileWarnings(this.configValue.file)) console.error(`warning: ${w}`);
    }
    return this.configValue;
  }

  /** Long-running commands (worker, producer, server) log every event; one-shot commands only problems. */
  daemon = false;

  get log(): Logger {
    this.logValue ??= createLogger({ debug: this.options.debug || this.configValue?.backup.debug, quiet: !this.daemon });
    return this.logValue;
  }

  async metadata(): Promise<MetadataStore> {
    if (!this.metadataValue) {
      // A daemon rides out a metadata outage for [metadata-link] retry_seconds; a command a DBA waits on does not.
      const opts = this.daemon ? { log: this.log } : { retrySeconds: Math.min(interactiveRetrySeconds, this.config.metadata.retrySeconds ?? interactiveRetrySeconds) };
      this.metadataValue = await MetadataStore.connect(this.config.metadata, opts);
      const m = this.metadataValue;
      this.closers.push(() => m.close());
    }
    return this.metadataValue;
  }

  /** The one time zone for what the command reads and prints: [metadata-link] time_zone, else the metadata server's. */
  async timeZone(): Promise<TimeZone> {
    return this.config.metadata.timeZone ?? (await this.metadata()).timeZone;
  }

  /**
   * timeZone(), for commands that also work without the metadata center (`--from-bucket`, `storage ls`): when it
   * cannot be reached and no time_zone is configured, this host's zone, said in a warning.
   */
  async timeZoneOrHost(warn: (message: string) => void): Promise<TimeZone> {
    try {
      return await this.timeZone();
    } catch (err) {
      if (!(err instanceof MetadataError)) throw err;
      const zone = processTimeZone() ?? UTC;
      warn(`metadata center unavailable and no [metadata-link] time_zone: times are read and printed in this host's zone, ${zone.name}`);
      return zone;
    }
  }

  /**
   * Redis must answer now, or the command fails with one line. A daemon's connection then reconnects for as long
   * as Redis is away; a one-shot command's gives up after a few attempts (src/queues/index.ts, ConnectionRole).
   */
  async queues(): Promise<Queues> {
    if (!this.queuesValue) {
      const redis = redisConnection(this.config, this.daemon ? 'daemon' : 'client');
      await pingRedis(redis, this.config.redis.url).catch(async (err) => {
        dropRedis(redis);
        throw err;
      });
      if (this.daemon) logRedisOutages(redis, this.log, 'queues');
      this.queuesValue = new Queues(this.config, redis);
      const q = this.queuesValue;
      this.closers.push(async () => {
        await q.close();
        await closeRedis(redis);
      });
    }
    return this.queuesValue;
  }

  /** Looks an instance up, with the error a DBA needs when the id is wrong. */
  async instance(id: number, opts: { mustBeEnabled?: boolean } = {}) {
    const metadata = await this.metadata();
    const instance = await metadata.getInstance(id);
    if (!instance) throw new UsageError(`unknown instance ${id}: no such id in tb_instance (see \`mcb instance list\`)`);
    if (opts.mustBeEnabled && !instance.isClone) {
      throw new UsageError(`instance ${id} (${instance.instanceId}) has is_clone = 0; enable it with \`mcb instance enable ${id}\``);
    }
    return instance;
  }

  async close(): Promise<void> {
    for (const fn of this.closers.reverse()) await fn().catch(() => undefined);
  }
}

export function parseId(value: string, what = 'instance id'): number {
  if (!/^\d+$/.test(value) || Number(value) <= 0 || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`${what} must be a positive whole number, got "${value}"`);
  }
  return Number(value);
}

/** Dates are written in `zone` (the metadata time zone) when given, else in this process's zone (UTC when it has none). */
export function printTable(rows: Array<Record<string, unknown>>, columns: string[], zone: TimeZone = processTimeZone() ?? UTC): void {
  const cell = (v: unknown) => (v instanceof Date ? formatLocalTime(v, zone) : v === null || v === undefined ? '' : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  console.log(line(columns));
  for (const r of rows) console.log(line(columns.map((c) => cell(r[c]))));
}

/** How a subcommand runs its action: with a CliContext that is closed afterwards (see main.ts). */
export type Run = (fn: (ctx: CliContext) => Promise<void>) => Promise<void>;
