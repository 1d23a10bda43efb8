// A byte-rate limit on a stream (`max_upload_mb_per_s`, `max_read_mb_per_s`), so a backup never saturates a
// production host's disk or network. A token bucket holding one second's worth: a chunk waits until the bytes it
// carries have been earned; backpressure then slows whatever feeds the stream.
import { PassThrough, Transform, type TransformCallback } from 'node:stream';

export interface ThrottleClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: ThrottleClock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** Bytes a chunk may be cut into, so a large chunk is paced smoothly rather than in one burst. */
const SLICE_BYTES = 64 * 1024;

/** The token bucket behind a Throttle; one bucket shared by several throttles paces their bytes together. */
export class RateLimit {
  private tokens: number;
  private last: number;

  constructor(
    readonly bytesPerSecond: number,
    private readonly clock: ThrottleClock = realClock,
  ) {
    if (!(bytesPerSecond > 0)) throw new RangeError(`a throttle needs a positive rate, got ${bytesPerSecond}`);
    // Start empty: the first second is paced like every other (no initial burst of a full bucket).
    this.tokens = 0;
    this.last = clock.now();
  }

  /** Resolves once `bytes` may pass. */
  async earn(bytes: number): Promise<void> {
    for (;;) {
      const now = this.clock.now();
      this.tokens = Math.min(this.bytesPerSecond, this.tokens + ((now - this.last) / 1000) * this.bytesPerSecond);
      this.last = now;
      if (this.tokens >= bytes || bytes > this.bytesPerSecond) {
        this.tokens -= bytes;
        if (this.tokens >= 0) return;
        // A slice larger than a second's worth (a very low limit): wait for the debt to be paid.
        await this.clock.sleep((-this.tokens / this.bytesPerSecond) * 1000);
        return;
      }
      await this.clock.sleep(((bytes - this.tokens) / this.bytesPerSecond) * 1000);
    }
  }
}

export class Throttle extends Transform {
  private readonly rate: RateLimit;

  /** `rate`: bytes per second, or a RateLimit shared with other throttles. */
  constructor(rate: number | RateLimit, clock: ThrottleClock = realClock) {
    super();
    this.rate = rate instanceof RateLimit ? rate : new RateLimit(rate, clock);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.pace(chunk).then(() => done(), done);
  }

  private async pace(chunk: Buffer): Promise<void> {
    for (let offset = 0; offset < chunk.length; offset += SLICE_BYTES) {
      const slice = chunk.subarray(offset, offset + SLICE_BYTES);
      await this.rate.earn(slice.length);
      if (this.destroyed) return;
      this.push(slice);
    }
  }
}

/** A Transform limiting the stream to `mbPerSecond` MiB/s; a pass-through when the limit is unset or 0. */
export function throttle(mbPerSecond: number | undefined): Transform {
  return mbPerSecond ? new Throttle(mbPerSecond * 1024 * 1024) : new PassThrough();
}
