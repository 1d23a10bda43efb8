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
