// Named locks (GET_LOCK) of the metadata center. A lock is held on a connection of its own, never one of the
// pool the locked code queries through: a lock cannot then starve that code of connections, and it dies with
// its connection, so a killed process never leaves one held.
import { createHash } from 'node:crypto';
import type { Connection, RowDataPacket } from 'mysql2/promise';

/**
 * GET_LOCK names are server-wide and at most 64 characters: every name carries the metadata database, so two
 * metadata databases on one server (two environments, or tests) never share a lock; a long name is hashed.
 */
export function metadataLockName(database: string, kind: string, key: string | number): string {
  const name = `mcb_${kind}_${database}_${key}`;
  return name.length <= 64 ? name : `mcb_${kind}_${createHash('sha256').update(name).digest('hex').slice(0, 40)}`;
}

/** Who holds a busy lock: the metadata connection id and the client address the server sees. */
export interface LockHolder {
  connectionId: number;
  clientAddress: string;
}

export interface AcquireOptions {
  /** How long to wait for a busy lock; Infinity waits until the lock is free or `signal` aborts. */
  waitSeconds: number;
  signal?: AbortSignal;
  /** Called once, when the lock is found busy (holder undefined when it was released meanwhile). */
  onBusy?(holder: LockHolder | undefined): void;
}

export class MetadataLockError extends Error {}

export type OpenConnection = () => Promise<Connection>;

/** One GET_LOCK call waits at most this long: a longer wait is several calls (no server-specific "forever"). */
const WAIT_SLICE_SECONDS = 5;
/** After the lock's connection is lost: how often to reconnect and take the lock again. */
const REACQUIRE_INTERVAL_MS = 2000;

/**
 * A named lock held on its own connection. When that connection is lost (a metadata server restart), the lock
 * is taken again as soon as the server answers; `lost` aborts only when another connection took it meanwhile.
 */
export class HeldLock {
  private readonly lostController = new AbortController();
  private released = false;
  private reacquiring?: Promise<void>;

  private constructor(
    readonly name: string,
    private conn: Connection,
    private readonly open: OpenConnection,
  ) {
    this.watch(conn);
  }

  /** Aborts when the lock was lost to another holder; the locked work must stop. */
  get lost(): AbortSignal {
    return this.lostController.signal;
  }

  /** Takes the lock, waiting as `opts` says; undefined when it stayed busy for waitSeconds. */
  static async acquire(open: OpenConnection, name: string, opts: AcquireOptions): Promise<HeldLock | undefined> {
    const conn = await openLockConnection(open);
    // An abort ends a GET_LOCK that is waiting, by closing its connection.
    const onAbort = () => conn.destroy();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const deadline = Date.now() + opts.waitSeconds * 1000;
      let reported = false;
      let wait = 0; // the first try does not wait, so a busy lock is reported at once
      for (;;) {
        opts.signal?.throwIfAborted();
        if (await getLock(conn, name, wait)) return new HeldLock(name, conn, open);
        if (!reported) {
          reported = true;
          opts.onBusy?.(await lockHolder(conn, name));
        }
        const left = deadline - Date.now();
        if (left <= 0) break;
        wait = Math.min(WAIT_SLICE_SECONDS, Math.ceil(left / 1000));
      }
    } catch (err) {
      conn.destroy();
      opts.signal?.throwIfAborted();
      throw err;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
    await conn.end().catch(() => undefined);
    return undefined;
  }

  async release(): Promise<void> {
    this.released = true;
    await this.reacquiring;
    await this.conn.query('SELECT RELEASE_LOCK(?)', [this.name]).catch(() => undefined);
    await this.conn.end().catch(() => undefined);
  }

  private watch(conn: Connection): void {
    const onGone = () => {
      if (this.released || conn !== this.conn || this.reacquiring) return;
      this.reacquiring = this.reacquire().finally(() => {
        this.reacquiring = undefined;
      });
    };
    conn.on('error', onGone);
    conn.on('end', onGone);
  }

  private async reacquire(): Promise<void> {
    while (!this.released) {
      await new Promise((r) => setTimeout(r, REACQUIRE_INTERVAL_MS));
      if (this.released) return;
      let conn: Connection | undefined;
      try {
        conn = await openLockConnection(this.open);
        if (await getLock(conn, this.name, 0)) {
          this.conn = conn;
          this.watch(conn);
          return;
        }
        await conn.end().catch(() => undefined);
        this.lostController.abort(new MetadataLockError(`metadata lock ${this.name} was taken by another connection while the metadata center was unreachable`));
        return;
      } catch {
        await conn?.end().catch(() => undefined);
        // The server is still unreachable: nobody else can take the lock either; try again.
      }
    }
  }
}

/** An idle lock connection must outlive the server's wait_timeout (8 hours by default): a clone may take longer. */
async function openLockConnection(open: OpenConnection): Promise<Connection> {
  const conn = await open();
  conn.on('error', () => undefined);
  try {
    await conn.query('SET SESSION wait_timeout = 31536000');
  } catch (err) {
    await conn.end().catch(() => undefined);
    throw err;
  }
  return conn;
}

async function getLock(conn: Connection, name: string, waitSeconds: number): Promise<boolean> {
  const [rows] = await conn.query<RowDataPacket[]>('SELECT GET_LOCK(?, ?) AS got', [name, waitSeconds]);
  const got = rows[0]?.got;
  if (got === null || got === undefined) throw new MetadataLockError(`GET_LOCK(${name}) failed on the metadata center`);
  return Number(got) === 1;
}

async function lockHolder(conn: Connection, name: string): Promise<LockHolder | undefined> {
  const [rows] = await conn.query<RowDataPacket[]>('SELECT IS_USED_LOCK(?) AS id', [name]);
  const id = rows[0]?.id;
  if (id === null || id === undefined) return undefined;
  const [who] = await conn
    .query<RowDataPacket[]>('SELECT HOST AS host FROM information_schema.PROCESSLIST WHERE ID = ?', [id])
    .catch(() => [[] as RowDataPacket[]]);
  return { connectionId: Number(id), clientAddress: String(who[0]?.host ?? 'unknown') };
}
