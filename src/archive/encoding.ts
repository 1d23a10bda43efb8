// How stored bytes relate to the plaintext: compressed by the codec, then, when a key is given, encrypted
// (src/crypto). Writers build the chain from an Encoding; readers from the object's name alone (`.gz`/`.zst`,
// then `.enc`), so objects of every era decode side by side.
import type { Duplex } from 'node:stream';
import { DecryptStream, emptyKeyring, EncryptStream, ENCRYPTED_SUFFIX, type EncryptionKey, type Keyring } from '../crypto/index.ts';
import { isEncryptedObjectName } from '../naming.ts';
import { codecForObjectName, type Codec, type CompressOptions } from './codec.ts';

export interface Encoding {
  codec: Codec;
  /** Encrypts after compressing; absent: stored as compressed. */
  key?: EncryptionKey;
}

/** What follows `.tar` or the binlog's name: `.gz`, `.zst` or nothing, then `.enc` when encrypted. */
export function encodingSuffix(encoding: Encoding): string {
  return encoding.codec.extension + (encoding.key ? ENCRYPTED_SUFFIX : '');
}

export interface EncodeOptions extends CompressOptions {
  /** The encryption salt (binlogs: derived from their content); random when absent. */
  salt?: Buffer;
}

/** The transforms from plaintext to stored bytes. */
export function encoders(encoding: Encoding, opts: EncodeOptions = {}): Duplex[] {
  const compress = encoding.codec.compress({ level: opts.level, threads: opts.threads });
  return encoding.key ? [compress, new EncryptStream(encoding.key, { salt: opts.salt })] : [compress];
}

/** The transforms from the stored bytes of `objectName` to its plaintext; an encrypted one needs its key in `keyring`. */
export function decodersFor(objectName: string, keyring: Keyring | undefined): Duplex[] {
  const decompress = codecForObjectName(objectName).decompress();
  if (!isEncryptedObjectName(objectName)) return [decompress];
  return [new DecryptStream(keyring ?? emptyKeyring, { label: objectName }), decompress];
}
