// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320): the checksum MySQL writes after every binlog event
// when binlog_checksum=CRC32 (the same function as zlib's crc32()). Node 20's zlib does not expose it, so
// this is a table-driven implementation using "slicing by 8" (eight 256-entry tables) so that verifying a
// large binlog costs well under a second per GB.

const TABLES: Uint32Array[] = buildTables();

function buildTables(): Uint32Array[] {
  const tables: Uint32Array[] = [];
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t0[n] = c >>> 0;
  }
  tables.push(t0);
  for (let t = 1; t < 8; t++) {
    const prev = tables[t - 1]!;
    const cur = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      const p = prev[n]!;
      cur[n] = (t0[p & 0xff]! ^ (p >>> 8)) >>> 0;
    }
    tables.push(cur);
  }
  return tables;
}

/**
 * CRC-32 of `data[start, end)`, continuing from `previous` (the value returned for the bytes before), so a large
 * event can be checksummed chunk by chunk: `crc32(b, 0, b.length, crc32(a))` equals the CRC of `a` followed by `b`.
 */
export function crc32(data: Uint8Array, start = 0, end = data.length, previous = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [
    Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array,
  ];
  let c = ~previous >>> 0;
  let i = start;
  const fastEnd = end - ((end - start) % 8);
  while (i < fastEnd) {
    const a = (c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    c =
      t7[a & 0xff]! ^
      t6[(a >>> 8) & 0xff]! ^
      t5[(a >>> 16) & 0xff]! ^
      t4[a >>> 24]! ^
      t3[data[i + 4]!]! ^
      t2[data[i + 5]!]! ^
      t1[data[i + 6]!]! ^
      t0[data[i + 7]!]!;
    i += 8;
  }
  while (i < end) {
    c = t0[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
    i++;
  }
  return ~c >>> 0;
}
