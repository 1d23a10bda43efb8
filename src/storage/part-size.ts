// How big each part of a multipart upload is. S3 allows at most 10,000 parts per upload, parts of 5 MiB to
// 5 GiB (the last may be smaller) and objects up to 5 TiB; `part_size_mb` is the preferred (minimum) size, and
// the size grows per upload so that any object S3 accepts fits in the part limit.

const MiB = 1024 * 1024;

export const S3_LIMITS = {
  maxParts: 10_000,
  minPartBytes: 5 * MiB,
  maxPartBytes: 5 * 1024 * MiB,
  maxObjectBytes: 5 * 1024 * 1024 * MiB,
} as const;

export class PartSizeError extends Error {}

export interface PartLimits {
  /** The preferred part size, in bytes (at least S3's 5 MiB). */
  minPartBytes: number;
  /** The store's limit on parts per upload (S3: 10,000). */
  maxParts: number;
}

/**
 * The part size for an object of `size` bytes: the preferred size, or the smallest whole number of MiB that keeps
 * the upload within `maxParts` parts. Throws PartSizeError for an object the store cannot take.
 */
export function partSizeFor(size: number, limits: PartLimits): number {
  checkLimits(limits);
  if (!Number.isSafeInteger(size) || size < 0) throw new PartSizeError(`object size must be a whole number of bytes, got ${size}`);
  if (size > S3_LIMITS.maxObjectBytes) {
    throw new PartSizeError(`an object of ${size} bytes is larger than S3's limit of ${S3_LIMITS.maxObjectBytes} bytes (5 TiB)`);
  }
  const needed = Math.ceil(Math.ceil(size / limits.maxParts) / MiB) * MiB;
  const part = Math.max(limits.minPartBytes, needed);
  if (part > S3_LIMITS.maxPartBytes) {
    throw new PartSizeError(`an object of ${size} bytes needs more than ${limits.maxParts} parts of 5 GiB, the largest part S3 takes`);
  }
  return part;
}

/**
 * The size of part `partNumber` (1-based) of a stream whose length is not known in advance: the preferred size
 * for the first tier of parts, doubling every tier (16 tiers within the part limit) up to 5 GiB. Memory stays at
 * the preferred size for ordinary objects, while `maxParts` parts still hold more than 5 TiB (see unknownSizeCapacity).
 */
export function partSizeOfUnknownLength(partNumber: number, limits: PartLimits): number {
  checkLimits(limits);
  if (!Number.isSafeInteger(partNumber) || partNumber < 1) throw new PartSizeError(`part number must be 1 or more, got ${partNumber}`);
  const tier = Math.floor((partNumber - 1) / tierLength(limits.maxParts));
  return Math.min(S3_LIMITS.maxPartBytes, limits.minPartBytes * 2 ** Math.min(tier, 30));
}

/** The largest stream of unknown length that partSizeOfUnknownLength fits into `maxParts` parts. */
export function unknownSizeCapacity(limits: PartLimits): number {
  let total = 0;
  for (let n = 1; n <= limits.maxParts; n++) total += partSizeOfUnknownLength(n, limits);
  return total;
}

function tierLength(maxParts: number): number {
  return Math.max(1, Math.floor(maxParts / 16));
}

function checkLimits(limits: PartLimits): void {
  if (!Number.isSafeInteger(limits.maxParts) || limits.maxParts < 1 || limits.maxParts > S3_LIMITS.maxParts) {
    throw new PartSizeError(`the part limit must be between 1 and ${S3_LIMITS.maxParts}, got ${limits.maxParts}`);
  }
  if (limits.minPartBytes < S3_LIMITS.minPartBytes || limits.minPartBytes > S3_LIMITS.maxPartBytes) {
    throw new PartSizeError(`the part size must be between 5 MiB and 5 GiB, got ${limits.minPartBytes} bytes`);
  }
}
