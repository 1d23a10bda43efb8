// Encryption keys: 256-bit secrets read from a file (64 hex characters, as `openssl rand -hex 32` writes) or from
// MCB_ENCRYPTION_KEY. A key is known everywhere else by its id, a digest of the key, so an object names the key
// that opens it without revealing anything about it.
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';

export class KeyError extends Error {}

const KEY_HEX = /^[0-9a-fA-F]{64}$/;

export class EncryptionKey {
  /** 16 hex characters: sha256 of a domain string and the key. */
  readonly id: string;
  readonly #secret: Buffer;

  constructor(secret: Buffer) {
    if (secret.length !== 32) throw new KeyError(`an encryption key is 32 bytes, got ${secret.length}`);
    this.#secret = Buffer.from(secret);
    this.id = createHash('sha256').update('mcb key id v1\0').update(secret).digest('hex').slice(0, 16);
  }

  /** HMAC-SHA256 of `parts` under the key: derives per-object keys and salts without exposing the key. */
  hmac(...parts: Array<string | Buffer>): Buffer {
    const mac = createHmac('sha256', this.#secret);
    for (const p of parts) mac.update(p);
    return mac.digest();
  }

  /** HKDF-SHA256 of the key with `salt` and `info`. */
  derive(salt: Buffer, info: string): Buffer {
    // RFC 5869 with one output block: PRK = HMAC(salt, IKM); OKM = HMAC(PRK, info || 0x01).
    const prk = createHmac('sha256', salt).update(this.#secret).digest();
    return createHmac('sha256', prk).update(info).update(Buffer.from([1])).digest();
  }

  // Whatever prints or serialises a key (a logger, JSON.stringify, console.log) sees its id only.
  toJSON(): { id: string } {
    return { id: this.id };
  }
  toString(): string {
    return `key ${this.id}`;
  }
  [inspect.custom](): string {
    return `EncryptionKey(${this.id})`;
  }
}

/** A key from its hex form; `source` names where it came from in the error (never the value). */
export function parseKeyHex(text: string, source: string): EncryptionKey {
  const hex = text.trim();
  if (!KEY_HEX.test(hex)) {
    const shape = hex.length === 64 ? '64 characters, not all hex digits' : `${hex.length} characters`;
    throw new KeyError(`${source} must hold a 256-bit key as 64 hex characters (openssl rand -hex 32), found ${shape}`);
  }
  return new EncryptionKey(Buffer.from(hex, 'hex'));
}

export function loadKeyFile(file: string): EncryptionKey {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new KeyError(`cannot read key file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseKeyHex(text, `key file ${file}`);
}

/** The keys a process can decrypt with; `current` (when set) encrypts what it writes. */
export class Keyring {
  private readonly byId = new Map<string, EncryptionKey>();

  constructor(
    readonly current: EncryptionKey | undefined,
    older: EncryptionKey[] = [],
  ) {
    for (const k of [...(current ? [current] : []), ...older]) this.byId.set(k.id, k);
  }

  find(id: string): EncryptionKey | undefined {
    return this.byId.get(id);
  }

  get ids(): string[] {
    return [...this.byId.keys()];
  }

  /** A sentence for errors: which keys are configured. */
  describe(): string {
    return this.byId.size ? `configured keys: ${this.ids.join(', ')}` : 'no encryption key is configured ([encryption] key_file, key_files or MCB_ENCRYPTION_KEY)';
  }

  toJSON(): { current?: string; ids: string[] } {
    return { current: this.current?.id, ids: this.ids };
  }
  [inspect.custom](): string {
    return `Keyring(${this.ids.join(', ')})`;
  }
}

export const emptyKeyring = new Keyring(undefined);
