// gzip on every core: worker threads compress fixed-size blocks of the input into gzip members of their own, written
// in input order; concatenated members are one valid gzip file (RFC 1952) for gunzip, `tar -xz` and zlib (pigz -i
// and bgzip write the same shape). Fixed cut offsets make the output depend on level and block size only, not on
// threads or input chunking (the binlog job hashes the output in a pass before the upload). At most `2 × threads`
// blocks are in flight; beyond that writes wait, so backpressure reaches the source.
import { Duplex } from 'node:stream';
import { Worker } from 'node:worker_threads';
import zlib from 'node:zlib';

/** Measured on sysbench-shaped InnoDB pages: 1 MiB blocks lose ~0.1 % of ratio to one stream; 64 KiB lose ~1 %. */
export const GZIP_BLOCK_BYTES = 1024 * 1024;

// Plain JavaScript evaluated by the worker (no file path: the same under tsx and a compiled build). zlib writes the
// member into one buffer of chunkSize (the deflate bound of a block); it is transferred, not copied, and the block
// goes back too, to be filled again: the worker keeps no garbage waiting for its own GC. A small member is copied
// out instead (it may sit in a buffer shared with other allocations).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { gzipSync } = require('node:zlib');
parentPort.on('message', (block) => {
  const out = gzipSync(block, { level: workerData.level, chunkSize: workerData.chunkSize });
  const member = out.length < 65536 ? Uint8Array.prototype.slice.call(out) : out;
  parentPort.postMessage({ block, member }, [block.buffer, member.buffer]);
});
`;

export interface ParallelGzipOptions {
  level: number;
  threads: number;
  blockBytes?: number;
}

interface Job {
  member?: Buffer;
}

interface Answer {
  block: Uint8Array;
  member: Uint8Array;
}

interface PoolWorker {
  worker: Worker;
  /** This worker's jobs, in the order it was given them (it answers in that order). */
  queue: Job[];
}

interface PendingWrite {
  chunk: Buffer;
  offset: number;
  done: (err?: Error | null) => void;
}

export class ParallelGzip extends Duplex {
  private readonly level: number;
  private readonly threads: number;
  private readonly blockBytes: number;
  private readonly maxJobs: number;
  private readonly workers: PoolWorker[] = [];
  /** Submitted blocks not yet pushed, in input order. */
  private readonly jobs: Job[] = [];
  private block: Buffer | undefined;
  /** Blocks the workers gave back, to be filled again. */
  private readonly freeBlocks: Buffer[] = [];
  private filled = 0;
  private submitted = 0;
  private pendingWrite: PendingWrite | undefined;
  private finishing: ((err?: Error | null) => void) | undefined;
  private wantsData = false;
  private stopped = false;

  constructor(opts: ParallelGzipOptions) {
    super();
    this.level = opts.level;
    this.threads = Math.max(1, Math.floor(opts.threads));
    this.blockBytes = opts.blockBytes ?? GZIP_BLOCK_BYTES;
    this.maxJobs = 2 * this.threads;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.pendingWrite = { chunk, offset: 0, done };
    this.fill();
  }

  override _final(done: (err?: Error | null) => void): void {
    this.finishing = done;
    // An empty input still makes a valid gzip file (one empty member), as gzip does.
    if (this.filled > 0 || this.submitted === 0) this.submit();
    this.drain();
  }

  override _read(): void {
    this.wantsData = true;
    this.drain();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.stopped = true;
    this.jobs.length = 0;
    this.block = undefined;
    this.freeBlocks.length = 0;
    this.stopWorkers().then(
      () => done(err),
      () => done(err),
    );
  }

  /** Copies the pending write into blocks while there is room for more jobs; then lets the writer go on. */
  private fill(): void {
    const w = this.pendingWrite;
    if (!w || this.stopped) return;
    while (w.offset < w.chunk.length && this.jobs.length < this.maxJobs) {
      this.block ??= this.freeBlocks.pop() ?? Buffer.allocUnsafeSlow(this.blockBytes);
      const n = w.chunk.copy(this.block, this.filled, w.offset);
      this.filled += n;
      w.offset += n;
      if (this.filled === this.blockBytes) this.submit();
    }
    if (w.offset === w.chunk.length) {
      this.pendingWrite = undefined;
      w.done();
    }
  }

  private submit(): void {
    const block = this.block ? this.block.subarray(0, this.filled) : Buffer.alloc(0);
    this.block = undefined;
    this.filled = 0;
    this.submitted++;
    const job: Job = {};
    this.jobs.push(job);
    if (this.submitted === 1 && this.finishing !== undefined) {
      // The whole input is one block (a small binlog): zlib on the libuv pool, no thread to start.
      zlib.gzip(block, { level: this.level }, (err, member) => {
        if (this.stopped) return;
        if (err) return void this.destroy(err);
        job.member = member;
        this.drain();
      });
      return;
    }
    const target = this.pickWorker();
    target.queue.push(job);
    target.worker.postMessage(block, block.length > 0 ? [block.buffer as ArrayBuffer] : []);
  }

  /** The least busy worker; a new one while fewer than `threads` run and all are busy. */
  private pickWorker(): PoolWorker {
    let best = this.workers[0];
    for (const w of this.workers) if (w.queue.length < best!.queue.length) best = w;
    if (best && (best.queue.length === 0 || this.workers.length >= this.threads)) return best;
    return this.startWorker();
  }

  private startWorker(): PoolWorker {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      // The parent's --import tsx is not needed to run plain JavaScript, and would slow every start.
      execArgv: [],
      workerData: { level: this.level, chunkSize: this.blockBytes + (this.blockBytes >> 12) + (this.blockBytes >> 14) + 64 },
    });
    const entry: PoolWorker = { worker, queue: [] };
    worker.on('message', ({ block, member }: Answer) => {
      const job = entry.queue.shift();
      if (!job || this.stopped) return;
      job.member = Buffer.from(member.buffer, member.byteOffset, member.length);
      if (block.buffer.byteLength === this.blockBytes) this.freeBlocks.push(Buffer.from(block.buffer));
      this.drain();
    });
    worker.on('error', (err) => this.destroy(err));
    worker.on('exit', (code) => {
      if (!this.stopped) this.destroy(new Error(`a gzip compression thread exited unexpectedly (code ${code})`));
    });
    this.workers.push(entry);
    return entry;
  }

  /** Pushes finished members in input order while the reader wants them; ends the stream after the last. */
  private drain(): void {
    if (this.stopped) return;
    while (this.wantsData && this.jobs[0]?.member) {
      const job = this.jobs.shift()!;
      this.wantsData = this.push(job.member);
    }
    this.fill();
    if (this.finishing && this.jobs.length === 0 && !this.pendingWrite) {
      const done = this.finishing;
      this.finishing = undefined;
      this.stopped = true;
      this.push(null);
      this.stopWorkers().then(
        () => done(),
        (err: Error) => done(err),
      );
    }
  }

  private async stopWorkers(): Promise<void> {
    const workers = this.workers.splice(0);
    await Promise.all(workers.map((w) => w.worker.terminate()));
  }
}
