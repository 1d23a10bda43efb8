import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import { DecryptStream, DecryptionError, EncryptionKey, EncryptStream, HEADER_BYTES, Keyring, KeyError, keyIdOfHeader, loadKeyFile, parseKeyHex, saltForContent } from '../../src/crypto/index.ts';

const CHUNK_LOG2 = 10; // 1 KiB chunks keep the cases small
const CHUNK = 2 ** CHUNK_LOG2;
const RECORD = CHUNK + 16;
const keyA = new EncryptionKey(Buffer.alloc(32, 0xa1));
const keyB = new EncryptionKey(Buffer.alloc(32, 0xb2));

/** Feeds `data` in pieces of varying size, as a file or socket would. */
function piecewise(data: Buffer): Readable {
  const pieces: Buffer[] = [];
  for (let off = 0, i = 0; off < data.length; i++) {
    const n = [1, 7, 300, 1024, 1500, 4096][i % 6]!;
    pieces.push(data.subarray(off, off + n));
    off += n;
  }
  return Readable.from(pieces);
}

async function collect(source: Readable, ...transforms: NodeJS.ReadWriteStream[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(source, ...(transforms as [NodeJS.ReadWriteStream]), new Writable({ write: (c, _e, done) => (out.push(c), done()) }));
  return Buffer.concat(out);
}

async function encrypt(plain: Buffer, key = keyA, salt?: Buffer): Promise<Buffer> {
  return collect(piecewise(plain), new EncryptStream(key, { chunkLog2: CHUNK_LOG2, salt }));
}

async function decrypt(sealed: Buffer, keyring = new Keyring(keyA)): Promise<{ plain?: Buffer; error?: DecryptionError; released: number }> {
  let released = 0;
  const out: Buffer[] = [];
  try {
    await pipeline(piecewise(sealed), new DecryptStream(keyring, { label: 'bak_1_20261201000000.tar.gz.enc' }), new Writable({ write: (c, _e, done) => (out.push(c), (released += c.length), done()) }));
    return { plain: Buffer.concat(out), released };
  } catch (err) {
    assert.ok(err instanceof DecryptionError, `expected a DecryptionError, got ${err}`);
    return { error: err, released };
  }
}

function chunkAt(sealed: Buffer, i: number): Buffer {
  return sealed.subarray(HEADER_BYTES + i * RECORD, HEADER_BYTES + (i + 1) * RECORD);
}

describe('encryption format', () => {
  it('round-trips every size around the chunk boundaries, fed in uneven pieces', async () => {
    for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 5]) {
      const plain = randomBytes(size);
      const sealed = await encrypt(plain);
      const chunks = Math.max(1, Math.ceil(size / CHUNK));
      assert.equal(sealed.length, HEADER_BYTES + size + 16 * chunks, `size ${size}`);
      const { plain: back, error } = await decrypt(sealed);
      assert.equal(error, undefined, `size ${size}: ${error?.message}`);
      assert.ok(back!.equals(plain), `size ${size}`);
    }
  });

  it('names its key id in the header and hides the plaintext', async () => {
    const plain = Buffer.from('INSERT INTO t VALUES ("the secret row")'.repeat(100));
    const sealed = await encrypt(plain);
    assert.equal(keyIdOfHeader(sealed), keyA.id);
    assert.equal(sealed.indexOf('secret row'), -1);
    assert.notEqual(sealed.subarray(0, 2).toString('hex'), '1f8b', 'not gzip');
  });

  it('a random salt makes two encryptions of one plaintext differ; a content salt makes them equal', async () => {
    const plain = randomBytes(3000);
    assert.ok(!(await encrypt(plain)).equals(await encrypt(plain)));
    const salt = saltForContent(keyA, 'ab'.repeat(32));
    assert.ok((await encrypt(plain, keyA, salt)).equals(await encrypt(plain, keyA, salt)));
    assert.ok(!saltForContent(keyA, 'ab'.repeat(32)).equals(saltForContent(keyB, 'ab'.repeat(32))));
  });

  it('a flipped byte fails at its chunk, naming the object and key, releasing nothing of that chunk', async () => {
    const plain = randomBytes(4 * CHUNK);
    const sealed = await encrypt(plain);
    sealed[HEADER_BYTES + 2 * RECORD + 100]! ^= 0x01;
    const { error, released } = await decrypt(sealed);
    assert.equal(error?.problem, 'chunk');
    assert.match(error!.message, /^bak_1_20261201000000\.tar\.gz\.enc \(key [0-9a-f]{16}\) fails authentication at chunk 2 /);
    assert.ok(error!.message.includes(keyA.id));
    assert.ok(released <= 2 * CHUNK, `released ${released} bytes`);
  });

  it('chunks swapped, dropped or repeated fail authentication', async () => {
    const sealed = await encrypt(randomBytes(4 * CHUNK + 10));
    const head = sealed.subarray(0, HEADER_BYTES);
    const c = [0, 1, 2, 3, 4].map((i) => chunkAt(sealed, i));
    const swapped = Buffer.concat([head, c[0]!, c[2]!, c[1]!, c[3]!, c[4]!]);
    const dropped = Buffer.concat([head, c[0]!, c[2]!, c[3]!, c[4]!]);
    const repeated = Buffer.concat([head, c[0]!, c[0]!, c[1]!, c[2]!, c[3]!, c[4]!]);
    for (const [name, bad] of Object.entries({ swapped, dropped, repeated })) {
      const { error } = await decrypt(bad);
      assert.equal(error?.problem, 'chunk', name);
      assert.match(error!.message, /at chunk 1 /, name);
    }
  });

  it('an object cut at a chunk boundary is reported as truncated, one cut inside a chunk fails its last chunk', async () => {
    const sealed = await encrypt(randomBytes(3 * CHUNK + 10));
    const atBoundary = await decrypt(sealed.subarray(0, HEADER_BYTES + 2 * RECORD));
    assert.equal(atBoundary.error?.problem, 'truncated');
    assert.match(atBoundary.error!.message, /is truncated after chunk 1 \(no final chunk\)/);
    const inside = await decrypt(sealed.subarray(0, sealed.length - 5));
    assert.equal(inside.error?.problem, 'chunk');
    assert.match(inside.error!.message, /cut short or altered/);
    const inHeader = await decrypt(sealed.subarray(0, 40));
    assert.equal(inHeader.error?.problem, 'truncated');
    const noChunks = await decrypt(sealed.subarray(0, HEADER_BYTES));
    assert.equal(noChunks.error?.problem, 'truncated');
  });

  it('bytes appended after the final chunk are refused', async () => {
    const sealed = await encrypt(randomBytes(CHUNK * 2));
    const { error } = await decrypt(Buffer.concat([sealed, randomBytes(RECORD)]));
    assert.equal(error?.problem, 'trailing-data');
  });

  it('an object of a key that is not configured names that key; a wrong key is refused before any byte', async () => {
    const sealed = await encrypt(randomBytes(100), keyA);
    const { error, released } = await decrypt(sealed, new Keyring(keyB));
    assert.equal(error?.problem, 'unknown-key');
    assert.equal(error?.keyId, keyA.id);
    assert.match(error!.message, new RegExp(`is encrypted with key ${keyA.id}, which is not configured \\(configured keys: ${keyB.id}\\)`));
    assert.equal(released, 0);
    const none = await decrypt(sealed, new Keyring(undefined));
    assert.match(none.error!.message, /no encryption key is configured/);
    // With several keys the right one is found by id.
    assert.equal((await decrypt(sealed, new Keyring(keyB, [keyA]))).error, undefined);
  });

  it('a header edited (salt, chunk size) fails its MAC; a plain object is not taken for an encrypted one', async () => {
    const sealed = await encrypt(randomBytes(100));
    const salted = Buffer.from(sealed);
    salted[30]! ^= 0xff;
    assert.equal((await decrypt(salted)).error?.problem, 'header');
    const resized = Buffer.from(sealed);
    resized[8] = 12;
    assert.equal((await decrypt(resized)).error?.problem, 'header');
    const plain = await decrypt(Buffer.from('\x1f\x8b'.padEnd(200, 'x')));
    assert.equal(plain.error?.problem, 'not-encrypted');
  });
});

describe('encryption keys', () => {
  it('the key never appears when a key or keyring is printed or serialised', () => {
    const hex = 'c3'.repeat(32);
    const key = parseKeyHex(hex, 'MCB_ENCRYPTION_KEY');
    const ring = new Keyring(key, [keyA]);
    for (const text of [JSON.stringify({ key, ring }), inspect(key), inspect(ring), String(key), inspect({ nested: { key } })]) {
      assert.ok(!text.includes(hex) && !text.includes('c3c3c3'), text);
      assert.ok(text.includes(key.id), text);
    }
  });

  it('key ids are stable and distinct', () => {
    assert.match(keyA.id, /^[0-9a-f]{16}$/);
    assert.equal(new EncryptionKey(Buffer.alloc(32, 0xa1)).id, keyA.id);
    assert.notEqual(keyA.id, keyB.id);
  });

  it('key files hold 64 hex characters; other content is refused without echoing it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mcb-key-'));
    const good = path.join(dir, 'good.key');
    await writeFile(good, `${'0f'.repeat(32)}\n`);
    assert.equal(loadKeyFile(good).id, parseKeyHex('0F'.repeat(32), 'x').id);
    const short = path.join(dir, 'short.key');
    await writeFile(short, 'deadbeef');
    assert.throws(() => loadKeyFile(short), (e: Error) => e instanceof KeyError && /key file .*short\.key must hold a 256-bit key as 64 hex characters \(openssl rand -hex 32\), found 8 characters$/.test(e.message) && !e.message.includes('deadbeef'));
    assert.throws(() => parseKeyHex('zz'.repeat(32), 'MCB_ENCRYPTION_KEY'), /MCB_ENCRYPTION_KEY must hold .* found 64 characters, not all hex digits/);
    assert.throws(() => loadKeyFile(path.join(dir, 'absent.key')), /cannot read key file .*absent\.key: ENOENT/);
  });
});

describe('encrypted binlog encoding (src/jobs/binlog/upload.ts)', () => {
  it('two encodings of one file store identical bytes (a retry is found already stored), in a 0600 file that decrypts', async () => {
    const { encodedDigest, discardEncoded } = await import('../../src/jobs/binlog/upload.ts');
    const { getCodec } = await import('../../src/archive/index.ts');
    const { decodersFor } = await import('../../src/archive/index.ts');
    const { createReadStream, existsSync, statSync } = await import('node:fs');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mcb-enc-binlog-'));
    const file = path.join(dir, 'mysql-bin.000007');
    const content = Buffer.concat([randomBytes(3 * 1024 * 1024), Buffer.alloc(2 * 1024 * 1024, 7)]);
    await writeFile(file, content);
    const encoding = { codec: getCodec('zstd'), options: { level: 3, threads: 2 }, key: keyA, scratchDir: dir };
    const first = await encodedDigest(file, encoding);
    const second = await encodedDigest(file, encoding);
    try {
      assert.equal(first.sha256, second.sha256, 'same file, same key: same stored bytes');
      assert.equal(first.keyId, keyA.id);
      assert.equal(first.sourceBytes, content.length);
      assert.equal(statSync(first.encodedFile!).mode & 0o777, 0o600);
      assert.equal(statSync(first.encodedFile!).size, first.bytes);
      const { readdirSync } = await import('node:fs');
      assert.deepEqual(readdirSync(dir).sort(), [path.basename(first.encodedFile!), path.basename(second.encodedFile!), 'mysql-bin.000007'].sort(), 'the compressed intermediate file is removed');
      const other = await encodedDigest(file, { ...encoding, key: keyB });
      assert.notEqual(other.sha256, first.sha256, 'another key stores other bytes');
      await discardEncoded(other);
      const plain = await collect(createReadStream(first.encodedFile!), ...(decodersFor('log_1_mysql-bin.000007.zst.enc', new Keyring(keyA)) as NodeJS.ReadWriteStream[]));
      assert.ok(plain.equals(content), 'the encoded file decrypts and decompresses to the binlog');
    } finally {
      await discardEncoded(first);
      await discardEncoded(second);
    }
    assert.ok(!existsSync(first.encodedFile!) && !existsSync(second.encodedFile!), 'discardEncoded removes the local copies');
  });
});
