// Binary log file names: `<base>.<number>`, numbered in order within one series (`mysql-bin.000042`).

export interface BinlogFileName {
  base: string;
  seq: number;
  /** How many digits the number is written with (zero-padded): 6 in `mysql-bin.000042`. */
  digits: number;
}

/** `mysql-bin.000042` → { base: 'mysql-bin', seq: 42, digits: 6 }; undefined for a name without a number. */
export function parseBinlogFileName(name: string): BinlogFileName | undefined {
  const m = /^(.*)\.(\d+)$/.exec(name);
  return m ? { base: m[1]!, seq: Number(m[2]), digits: m[2]!.length } : undefined;
}

/** The name of file `seq` of the series `base` whose numbers have `digits` digits (more when `seq` needs them). */
export function binlogFileName(base: string, seq: number, digits: number): string {
  return `${base}.${String(seq).padStart(digits, '0')}`;
}

/** `mysql-bin.000042` → `mysql-bin.000043` (the padding kept, grown past it when needed). */
export function nextBinlogFile(name: string): string {
  const p = parseBinlogFileName(name);
  if (!p) throw new Error(`${name} is not a binlog file name (<base>.<number>)`);
  return binlogFileName(p.base, p.seq + 1, p.digits);
}

/** Order of two binlog names: by base name, then number (`mysql-bin.000010` after `mysql-bin.000009`). */
export function compareBinlogFiles(a: string, b: string): number {
  const pa = parseBinlogFileName(a);
  const pb = parseBinlogFileName(b);
  if (!pa || !pb || pa.base !== pb.base) return a < b ? -1 : a > b ? 1 : 0;
  return pa.seq - pb.seq;
}
