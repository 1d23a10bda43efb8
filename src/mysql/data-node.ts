// MySQL servers we drive: the instance being backed up, reached through [mysql-link] (the seed's backup_clone
// user): clone plugin, read_only, CLONE and clone_status, binlogs; and the temporary mysqld of restores and tests
// (mysqld.ts).
// May import: config, fs.
import mysql, { type Connection, type RowDataPacket } from 'mysql2/promise';
import { mysqlConnectionOptions, type MysqlLinkConfig } from '../config/index.ts';
import { abortReason } from '../errors.ts';

export class DataNodeError extends Error {}

/** ON / 1 / TRUE as a server prints a boolean variable. */
function isOn(value: string | null): boolean {
  return value !== null && ['1', 'ON', 'TRUE'].includes(value.toUpperCase());
}

export interface CloneStatus {
  state: string;
  beginTime: Date | null;
  endTime: Date | null;
  errorNo: number;
  errorMessage: string;
  binlogFile: string;
  binlogPosition: number;
  gtidExecuted: string;
}

export interface CloneProgressStage {
  stage: string;
  state: string;
  estimate: number;
  data: number;
}

/** What a CLONE will copy (cloneSizeEstimate). */
export interface CloneSizeEstimate {
  /** InnoDB system, undo, general and file-per-table tablespaces, in bytes. */
  dataBytes: number;
  /** How many files they are (0 when unknown). */
  files: number;
  redoBytes: number;
  /** Where the figures come from, for the refusal message. */
  source: 'information_schema' | 'the last clone';
}

export interface BinaryLogFile {
  name: string;
  size: number;
}

/** A place in a server's binary log: a file and a byte offset in it. */
export interface BinlogPosition {
  file: string;
  position: number;
}

/** What point-in-time restore needs of a server's binary logging (docs/binlog-backups.md "Preconditions"). */
export interface BinlogSettings {
  logBin: boolean;
  /** null when the server has no binlog_format any more (row-based logging only). */
  binlogFormat: string | null;
  gtidMode: string | null;
  /** log_replica_updates (log_slave_updates before 8.0.26); null when the server has neither. */
  logReplicaUpdates: boolean | null;
  /** Replication channels configured on it (rows of SHOW REPLICA STATUS): it is a replica when > 0. */
  replicaChannels: number;
}

export class DataNode {
  private constructor(
    private readonly conn: Connection,
    readonly link: MysqlLinkConfig,
  ) {}

  static async connect(link: MysqlLinkConfig): Promise<DataNode> {
    try {
      const conn = await mysql.createConnection(mysqlConnectionOptions(link));
      return new DataNode(conn, link);
    } catch (err) {
      const e = err as { code?: string; message?: string };
      const where = `${link.user}@${link.host}:${link.port}`;
      if (e.code === 'ER_ACCESS_DENIED_ERROR') throw new DataNodeError(`MySQL ${where} refused the login: wrong user or password`);
      throw new DataNodeError(`MySQL ${where} is unreachable: ${e.code ?? e.message}`);
    }
  }

  get where(): string {
    return `${this.link.host}:${this.link.port}`;
  }

  async close(): Promise<void> {
    await this.conn.end().catch(() => undefined);
  }

  private async rows(sql: string, params: unknown[] = []): Promise<RowDataPacket[]> {
    const [rows] = await this.conn.query<RowDataPacket[]>(sql, params);
    return rows;
  }

  /** The seed's check: the clone plugin must be installed and ACTIVE. */
  async assertClonePluginActive(): Promise<void> {
    const rows = await this.rows("SELECT PLUGIN_STATUS FROM INFORMATION_SCHEMA.PLUGINS WHERE PLUGIN_NAME = 'clone'");
    const status = rows[0]?.PLUGIN_STATUS as string | undefined;
    if (status === undefined) {
      throw new DataNodeError(`clone plugin is not installed on ${this.where}; run: INSTALL PLUGIN clone SONAME 'mysql_clone.so'`);
    }
    if (status !== 'ACTIVE') throw new DataNodeError(`clone plugin on ${this.where} is ${status}, not ACTIVE`);
  }

  async isReadOnly(): Promise<boolean> {
    const rows = await this.rows('SELECT @@GLOBAL.read_only AS ro');
    return Number(rows[0]?.ro) === 1;
  }

  async serverUuid(): Promise<string> {
    const rows = await this.rows('SELECT @@GLOBAL.server_uuid AS u');
    return String(rows[0]?.u);
  }

  /**
   * CLONE LOCAL DATA DIRECTORY. The directory must not exist. Aborting the signal kills the statement from
   * a second connection, so a worker shutting down does not wait for a long clone.
   */
  async cloneLocal(directory: string, signal?: AbortSignal): Promise<void> {
    if (directory.includes("'") || directory.includes('\\')) throw new DataNodeError(`unsafe clone directory name: ${directory}`);
    const threadId = this.conn.threadId;
    const onAbort = () => {
      void this.killQuery(threadId);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (signal?.aborted) throw new DataNodeError('clone aborted before it started');
      // CLONE takes no placeholders; the path is checked above.
      await this.conn.query(`CLONE LOCAL DATA DIRECTORY = '${directory}'`);
    } catch (err) {
      if (signal?.aborted) throw new DataNodeError(`clone into ${directory} was interrupted: ${abortReason(signal)}`);
      throw new DataNodeError(`CLONE LOCAL DATA DIRECTORY '${directory}' failed on ${this.where}: ${(err as Error).message}`);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  private async killQuery(threadId: number | null): Promise<void> {
    if (threadId === null) return;
    const killer = await DataNode.connect(this.link).catch(() => undefined);
    if (!killer) return;
    try {
      await killer.conn.query('KILL QUERY ?', [threadId]);
    } catch {
      // The statement may have finished already.
    } finally {
      await killer.close();
    }
  }

  /**
   * A CLONE into `directory` still running inside mysqld: a CLONE goes on after its client died (a worker killed
   * mid-clone), so another attempt must stop it before touching the directory. Only a clone into this very
   * directory is ever reported, never another one.
   */
  async runningCloneInto(directory: string): Promise<{ processlistId: number } | undefined> {
    // DESTINATION is the directory as CLONE was given it, with a trailing slash added.
    const exact = directory.replace(/\/+$/, '');
    const rows = await this.rows("SELECT PID FROM performance_schema.clone_status WHERE STATE = 'In Progress' AND DESTINATION IN (?, ?)", [exact, `${exact}/`]);
    return rows[0] ? { processlistId: Number(rows[0].PID) } : undefined;
  }

  /**
   * Kills the CLONE into `directory` left running by a dead attempt (KILL of its connection), then waits up to
   * `waitSeconds` for mysqld to abort it. Returns the killed connection's id, or undefined when none was running.
   */
  async stopCloneInto(directory: string, waitSeconds: number): Promise<number | undefined> {
    const running = await this.runningCloneInto(directory);
    if (!running) return undefined;
    try {
      await this.conn.query('KILL ?', [running.processlistId]);
    } catch (err) {
      // ER_NO_SUCH_THREAD: it ended between the two statements.
      if ((err as { code?: string }).code !== 'ER_NO_SUCH_THREAD') throw new DataNodeError(`could not KILL the clone into ${directory} (connection ${running.processlistId}) on ${this.where}: ${(err as Error).message}`);
    }
    const deadline = Date.now() + waitSeconds * 1000;
    while (await this.runningCloneInto(directory)) {
      if (Date.now() >= deadline) throw new DataNodeError(`the clone into ${directory} (connection ${running.processlistId}) on ${this.where} was killed but is still running after ${waitSeconds} s`);
      await new Promise((r) => setTimeout(r, 250));
    }
    return running.processlistId;
  }

  /** The last clone operation (performance_schema.clone_status); END_TIME is the backup's recovery point. */
  async cloneStatus(): Promise<CloneStatus | undefined> {
    const rows = await this.rows(
      `SELECT STATE, UNIX_TIMESTAMP(BEGIN_TIME) AS begin_ts, UNIX_TIMESTAMP(END_TIME) AS end_ts, ERROR_NO, ERROR_MESSAGE,
              BINLOG_FILE, BINLOG_POSITION, GTID_EXECUTED
         FROM performance_schema.clone_status ORDER BY ID DESC LIMIT 1`,
    );
    const r = rows[0];
    if (!r) return undefined;
    // Whole seconds, rounded down: the recovery point must not claim writes after the real one.
    const toDate = (ts: unknown) => (ts === null || ts === undefined ? null : new Date(Math.floor(Number(ts)) * 1000));
    return {
      state: r.STATE,
      beginTime: toDate(r.begin_ts),
      endTime: toDate(r.end_ts),
      errorNo: Number(r.ERROR_NO),
      errorMessage: r.ERROR_MESSAGE ?? '',
      binlogFile: r.BINLOG_FILE ?? '',
      binlogPosition: Number(r.BINLOG_POSITION ?? 0),
      gtidExecuted: String(r.GTID_EXECUTED ?? '').replace(/\s+/g, ''),
    };
  }

  async cloneProgress(): Promise<CloneProgressStage[]> {
    const rows = await this.rows('SELECT STAGE, STATE, ESTIMATE, DATA FROM performance_schema.clone_progress ORDER BY ID');
    return rows.map((r) => ({ stage: r.STAGE, state: r.STATE, estimate: Number(r.ESTIMATE ?? 0), data: Number(r.DATA ?? 0) }));
  }

  /**
   * What a CLONE of this server will write, before it runs (src/jobs/free-space.ts): the InnoDB tablespaces'
   * file sizes (information_schema, which needs PROCESS), else the last completed clone's estimates
   * (performance_schema.clone_progress), else undefined. redoBytes is the redo log capacity, which MySQL's own
   * clone space check reserves too.
   */
  async cloneSizeEstimate(): Promise<CloneSizeEstimate | undefined> {
    const redoBytes = await this.redoCapacity();
    try {
      const [spaces] = await this.rows(
        `SELECT COUNT(*) AS files, COALESCE(SUM(FILE_SIZE), 0) AS bytes
           FROM information_schema.INNODB_TABLESPACES WHERE NAME NOT IN ('innodb_system', 'innodb_temporary')`,
      );
      const [system] = await this.rows(
        `SELECT COUNT(*) AS files, COALESCE(SUM(TOTAL_EXTENTS * EXTENT_SIZE), 0) AS bytes
           FROM information_schema.FILES WHERE TABLESPACE_NAME = 'innodb_system'`,
      );
      return {
        dataBytes: Number(spaces?.bytes ?? 0) + Number(system?.bytes ?? 0),
        files: Number(spaces?.files ?? 0) + Number(system?.files ?? 0),
        redoBytes,
        source: 'information_schema',
      };
    } catch (err) {
      if ((err as { code?: string }).code !== 'ER_SPECIFIC_ACCESS_DENIED_ERROR') throw err;
    }
    const last = await this.cloneStatus();
    if (last?.state !== 'Completed') return undefined;
    const [copied] = await this.rows(
      "SELECT COALESCE(SUM(ESTIMATE), 0) AS bytes FROM performance_schema.clone_progress WHERE STAGE IN ('FILE COPY', 'PAGE COPY', 'REDO COPY')",
    );
    const dataBytes = Number(copied?.bytes ?? 0);
    return dataBytes > 0 ? { dataBytes, files: 0, redoBytes, source: 'the last clone' } : undefined;
  }

  /** innodb_redo_log_capacity (8.0.30+), else innodb_log_file_size × innodb_log_files_in_group. */
  private async redoCapacity(): Promise<number> {
    const capacity = await this.optionalVariable('innodb_redo_log_capacity');
    if (capacity !== null) return Number(capacity);
    const fileSize = Number((await this.optionalVariable('innodb_log_file_size')) ?? 0);
    return fileSize * Number((await this.optionalVariable('innodb_log_files_in_group')) ?? 2);
  }

  async flushBinaryLogs(): Promise<void> {
    await this.conn.query('FLUSH BINARY LOGS');
  }

  async binaryLogs(): Promise<BinaryLogFile[]> {
    const rows = await this.rows('SHOW BINARY LOGS');
    return rows.map((r) => ({ name: r.Log_name, size: Number(r.File_size) }));
  }

  /**
   * The binlog being written and the end of its last committed transaction: SHOW BINARY LOG STATUS (8.2+), else SHOW
   * MASTER STATUS; undefined when binary logging is off. Needs REPLICATION CLIENT.
   */
  async binaryLogStatus(): Promise<BinlogPosition | undefined> {
    let rows: RowDataPacket[];
    try {
      rows = await this.rows('SHOW BINARY LOG STATUS');
    } catch (err) {
      if ((err as { code?: string }).code !== 'ER_PARSE_ERROR') throw err;
      rows = await this.rows('SHOW MASTER STATUS');
    }
    const r = rows[0];
    return r ? { file: String(r.File), position: Number(r.Position) } : undefined;
  }

  async binlogSettings(): Promise<BinlogSettings> {
    const logReplicaUpdates = (await this.optionalVariable('log_replica_updates')) ?? (await this.optionalVariable('log_slave_updates'));
    return {
      logBin: isOn(await this.variable('log_bin')),
      binlogFormat: await this.optionalVariable('binlog_format'),
      gtidMode: await this.optionalVariable('gtid_mode'),
      logReplicaUpdates: logReplicaUpdates === null ? null : isOn(logReplicaUpdates),
      replicaChannels: await this.replicaChannelCount(),
    };
  }

  /** SHOW REPLICA STATUS (8.0.22+), else SHOW SLAVE STATUS; needs REPLICATION CLIENT. */
  private async replicaChannelCount(): Promise<number> {
    try {
      return (await this.rows('SHOW REPLICA STATUS')).length;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ER_PARSE_ERROR') return (await this.rows('SHOW SLAVE STATUS')).length;
      if (code === 'ER_SPECIFIC_ACCESS_DENIED_ERROR' || code === 'ER_ACCESS_DENIED_ERROR') {
        throw new DataNodeError(`${this.link.user} may not run SHOW REPLICA STATUS on ${this.where}: GRANT REPLICATION CLIENT ON *.* TO it`);
      }
      throw err;
    }
  }

  /** A global variable, or null when this server version does not have it. */
  async optionalVariable(name: string): Promise<string | null> {
    try {
      return await this.variable(name);
    } catch (err) {
      if ((err as { code?: string }).code === 'ER_UNKNOWN_SYSTEM_VARIABLE') return null;
      throw err;
    }
  }

  async variable(name: string): Promise<string | null> {
    if (!/^[a-z_]+$/.test(name)) throw new DataNodeError(`bad variable name ${name}`);
    const rows = await this.rows(`SELECT @@GLOBAL.${name} AS v`);
    const v = rows[0]?.v;
    return v === null || v === undefined ? null : String(v);
  }
}
