// Streaming authenticated encryption of one object (the construction of age's STREAM, with AES-256-GCM); the
// format is in docs/security.md. Per-object keys come from the master key and the salt by HKDF; chunk i's nonce is
// i and a last-chunk flag, so a chunk moved, dropped or repeated fails its tag, and an object cut at a chunk
// boundary has no chunk flagged last. Plaintext is released only after its chunk's tag checks.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { EncryptionKey, Keyring } from './keys.ts';

const MAGIC = Buffer.from('MCBENC01', 'latin1');
const KEY_ID_BYTES = 8;
const SALT_BYTES = 32;
const MAC_BYTES = 32;
const TAG_BYTES = 16;
export const HEADER_BYTES = MAGIC.length + 1 + KEY_ID_BYTES + SALT_BYTES + MAC_BYTES;
/** 1 MiB: large enough that the per-chunk cost is lost in the AES work, small enough to hold a few in memory. */
export const DEFAULT_CHUNK_LOG2 = 20;
const MIN_CHUNK_LOG2 = 10;
/**
 * A stream's buffers hold a whole chunk or two. With node's 16 KiB default, a 1 MiB chunk pushed downstream stops
 * the input until the reader has taken all of it, so a download and the decompression after it take turns instead
 * of overlapping.
 */
const BUFFERING = { writableHighWaterMark: 2 << DEFAULT_CHUNK_LOG2, readableHighWaterMark: 1 << DEFAULT_CHUNK_LOG2 };
const MAX_CHUNK_LOG2 = 24;

export type DecryptionProblem = 'not-encrypted' | 'unknown-key' | 'header' | 'chunk' | 'truncated' | 'trailing-data';

/** An object that cannot be decrypted; the message names the object and the key id, never a key. */
export class DecryptionError extends Error {
  constructor(
    message: string,
    readonly problem: DecryptionProblem,
    readonly keyId?: string,
  ) {
    super(message);
  }
}

function chunkNonce(index: number, last: boolean): Buffer {
  const nonce = Buffer.alloc(12);
  // 2^53 chunks of 1 MiB is far past any object; the top 5 counter bytes stay 0.
  nonce.writeUIntBE(index, 5, 6);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

function headerKeys(key: EncryptionKey, salt: Buffer): { macKey: Buffer; payloadKey: Buffer } {
  return { macKey: key.derive(salt, 'mcb header v1'), payloadKey: key.derive(salt, 'mcb payload v1') };
}

/** Binds the chunk size and key id to the salt: a header edited to another chunk size or key fails first. */
function headerMac(macKey: Buffer, body: Buffer): Buffer {
  return createHmac('sha256', macKey).update(body).digest();
}

/**
 * Copies `data` into `buf` after its first `filled` bytes, handing a full `buf` to `takeFull` only when more data
 * follows (so whatever is left at the end is the last chunk). `takeFull` reads `buf` whole. Returns the new fill.
 */
function fillHoldingLast(data: Buffer, buf: Buffer, filled: number, takeFull: () => void): number {
  let offset = 0;
  while (offset < data.length) {
    if (filled === buf.length) {
      takeFull();
      filled = 0;
    }
    const n = Math.min(buf.length - filled, data.length - offset);
    data.copy(buf, filled, offset, offset + n);
    filled += n;
    offset += n;
  }
  return filled;
}

export interface EncryptOptions {
  /** 32 bytes; random when absent. A salt must never be reused for different plaintexts under one key. */
  salt?: Buffer;
  chunkLog2?: number;
}

/** The salt of a binlog object: a function of the key and the plaintext, so a retried upload stores the same bytes. */
export function saltForContent(key: EncryptionKey, plaintextSha256: string): Buffer {
  return key.hmac('mcb content salt v1\0', plaintextSha256);
}

export class EncryptStream extends Transform {
  private readonly header: Buffer;
  private readonly payloadKey: Buffer;
  private readonly chunkSize: number;
  private readonly pending: Buffer;
  private filled = 0;
  private index = 0;
  private headerSent = false;

  constructor(key: EncryptionKey, opts: EncryptOptions = {}) {
    super(BUFFERING);
    const log2 = opts.chunkLog2 ?? DEFAULT_CHUNK_LOG2;
    if (log2 < MIN_CHUNK_LOG2 || log2 > MAX_CHUNK_LOG2) throw new RangeError(`chunk size 2^${log2} is out of range`);
    const salt = opts.salt ?? randomBytes(SALT_BYTES);
    if (salt.length !== SALT_BYTES) throw new RangeError(`a salt is ${SALT_BYTES} bytes`);
    const { macKey, payloadKey } = headerKeys(key, salt);
    const body = Buffer.concat([MAGIC, Buffer.from([log2]), Buffer.from(key.id, 'hex'), salt]);
    this.header = Buffer.concat([body, headerMac(macKey, body)]);
    this.payloadKey = payloadKey;
    this.chunkSize = 2 ** log2;
    this.pending = Buffer.allocUnsafe(this.chunkSize);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.sendHeader();
    // A full chunk is sealed only once more plaintext arrives: the last chunk must carry the last flag.
    this.filled = fillHoldingLast(chunk, this.pending, this.filled, () => this.seal(false, this.chunkSize));
    done();
  }

  override _flush(done: TransformCallback): void {
    this.sendHeader();
    this.seal(true, this.filled);
    this.filled = 0;
    done();
  }

  private sendHeader(): void {
    if (this.headerSent) return;
    this.headerSent = true;
    this.push(this.header);
  }

  /** Encrypts the first `length` bytes of the pending chunk. */
  private seal(last: boolean, length: number): void {
    const cipher = createCipheriv('aes-256-gcm', this.payloadKey, chunkNonce(this.index++, last));
    const body = cipher.update(this.pending.subarray(0, length));
    cipher.final();
    this.push(body);
    this.push(cipher.getAuthTag());
  }
}

export interface DecryptOptions {
  /** The object's name, for messages. */
  label: string;
}

/** Reads the header of an encrypted object: its key id, or undefined when `head` is not one of ours. */
export function keyIdOfHeader(head: Buffer): string | undefined {
  if (head.length < MAGIC.length + 1 + KEY_ID_BYTES || !head.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  return head.subarray(MAGIC.length + 1, MAGIC.length + 1 + KEY_ID_BYTES).toString('hex');
}

export class DecryptStream extends Transform {
  private readonly label: string;
  private head: Buffer | undefined = Buffer.alloc(0) as Buffer;
  private keyId = '';
  private payloadKey: Buffer = Buffer.alloc(0);
  private recordSize = 0;
  private record: Buffer = Buffer.alloc(0);
  private filled = 0;
  private index = 0;

  constructor(
    private readonly keyring: Keyring,
    opts: DecryptOptions,
  ) {
    super(BUFFERING);
    this.label = opts.label;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      let data = chunk;
      if (this.head) {
        this.head = Buffer.concat([this.head, data]);
        if (this.head.length < HEADER_BYTES) return done();
        data = this.head.subarray(HEADER_BYTES);
        this.openHeader(this.head.subarray(0, HEADER_BYTES));
        this.head = undefined;
      }
      // A full record is opened only once more bytes follow: at the end it is the last chunk.
      this.filled = fillHoldingLast(data, this.record, this.filled, () => this.open(false, this.recordSize));
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      if (this.head) throw this.fail('truncated', `is truncated: it ends inside its ${HEADER_BYTES}-byte encryption header (${this.head.length} bytes)`);
      if (this.filled < TAG_BYTES) throw this.truncated();
      this.open(true, this.filled);
      this.filled = 0;
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  private fail(problem: DecryptionProblem, what: string): DecryptionError {
    const key = this.keyId ? ` (key ${this.keyId})` : '';
    return new DecryptionError(`${this.label}${key} ${what}; nothing of it was used`, problem, this.keyId || undefined);
  }

  private truncated(): DecryptionError {
    return this.fail('truncated', `is truncated after chunk ${this.index} (no final chunk): the object was cut short`);
  }

  private openHeader(header: Buffer): void {
    const keyId = keyIdOfHeader(header);
    if (keyId === undefined) throw this.fail('not-encrypted', 'does not start with an mcb encryption header (not an encrypted object, or its start is damaged)');
    this.keyId = keyId;
    const key = this.keyring.find(keyId);
    if (!key) throw this.fail('unknown-key', `is encrypted with key ${keyId}, which is not configured (${this.keyring.describe()}): add its key file to [encryption] key_files`);
    const log2 = header[MAGIC.length]!;
    const bodyEnd = HEADER_BYTES - MAC_BYTES;
    const salt = header.subarray(bodyEnd - SALT_BYTES, bodyEnd);
    const { macKey, payloadKey } = headerKeys(key, salt);
    if (!headerMac(macKey, header.subarray(0, bodyEnd)).equals(header.subarray(bodyEnd))) {
      throw this.fail('header', 'has an encryption header that fails authentication: the object was altered');
    }
    if (log2 < MIN_CHUNK_LOG2 || log2 > MAX_CHUNK_LOG2) throw this.fail('header', `names an unsupported chunk size 2^${log2}`);
    this.payloadKey = payloadKey;
    this.recordSize = 2 ** log2 + TAG_BYTES;
    this.record = Buffer.allocUnsafe(this.recordSize);
  }

  /** Opens the first `length` bytes of the record as chunk `index`, releasing its plaintext once its tag checks. */
  private open(last: boolean, length: number): void {
    const sealed = this.record.subarray(0, length);
    const plain = this.tryOpen(sealed, this.index, last);
    if (!plain) {
      // Say which damage it is when the record opens under the other flag.
      if (last && length === this.recordSize && this.tryOpen(sealed, this.index, false)) throw this.truncated();
      if (!last && this.tryOpen(sealed, this.index, true)) {
        throw this.fail('trailing-data', `has data after its final chunk ${this.index}: bytes were appended`);
      }
      const where = `chunk ${this.index} (payload bytes ${this.index * this.recordSize}+)`;
      if (last) throw this.fail('chunk', `fails authentication at its last ${where}: the object was cut short or altered`);
      throw this.fail('chunk', `fails authentication at ${where}: a byte was changed, or chunks were moved, dropped or repeated`);
    }
    this.index++;
    this.push(plain);
  }

  private tryOpen(sealed: Buffer, index: number, last: boolean): Buffer | undefined {
    const decipher = createDecipheriv('aes-256-gcm', this.payloadKey, chunkNonce(index, last));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    const plain = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES));
    try {
      decipher.final();
      return plain;
    } catch {
      return undefined;
    }
  }
}
