// GTID sets as MySQL writes them (`uuid:1-5:7,uuid2:1-3`, tagged since 8.3: `uuid:1-5:tag:3`): parse, format,
// and the set operations a restore needs. Pure; group numbers are bigints (they go up to 2^63-1).

/** One GTID. `tag` is '' for an untagged GTID. */
export interface Gtid {
  uuid: string;
  tag: string;
  gno: bigint;
}

/** The text is not a GTID or GTID set. */
export class GtidSetError extends Error {
  override readonly name = 'GtidSetError';
}

/** Inclusive [first, last]; the lists are kept sorted, disjoint and never adjacent (1-3 and 4-5 become 1-5). */
type Interval = [first: bigint, last: bigint];

const MAX_GNO = (1n << 63n) - 1n;
const UUID_RE = /^([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})$/i;
const TAG_RE = /^[a-z_][a-z0-9_]{0,31}$/i;
const INTERVAL_RE = /^(\d+)(?:\s*-\s*(\d+))?$/;

/**
 * A set of GTIDs. Every operation returns a new set, except add(), which changes this one (so that collecting
 * the GTIDs of a binlog costs one interval per run of consecutive transactions).
 */
export class GtidSet {
  /** Key `uuid` or `uuid:tag` → intervals. Keys with no interval are never stored. */
  private readonly byTsid = new Map<string, Interval[]>();

  /**
   * Parses MySQL's text form: the empty string (or only whitespace, or only commas) is the empty set; whitespace
   * and newlines between the parts are ignored (@@gtid_executed prints `,\n` between UUIDs); UUIDs and tags are
   * case-insensitive; a tag applies to the intervals after it, up to the next comma.
   */
  static parse(text: string): GtidSet {
    const set = new GtidSet();
    for (const element of text.split(',')) {
      if (element.trim() === '') continue;
      set.addElement(element, text);
    }
    return set;
  }

  /** A set holding these GTIDs (text `uuid:gno`, `uuid:tag:gno`, or Gtid). */
  static of(...gtids: Array<string | Gtid>): GtidSet {
    const set = new GtidSet();
    for (const g of gtids) set.add(g);
    return set;
  }

  /** Adds one GTID to this set (in place) and returns this set. */
  add(gtid: string | Gtid): this {
    const g = typeof gtid === 'string' ? parseGtid(gtid) : checkedGtid(gtid);
    this.addInterval(tsidKey(g.uuid, g.tag), [g.gno, g.gno]);
    return this;
  }

  contains(gtid: string | Gtid): boolean {
    const g = typeof gtid === 'string' ? parseGtid(gtid) : checkedGtid(gtid);
    const list = this.byTsid.get(tsidKey(g.uuid, g.tag));
    if (!list) return false;
    const i = lastStartingAtOrBefore(list, g.gno);
    return i >= 0 && list[i]![1] >= g.gno;
  }

  isEmpty(): boolean {
    return this.byTsid.size === 0;
  }

  /** How many GTIDs the set holds. */
  count(): bigint {
    let n = 0n;
    for (const list of this.byTsid.values()) for (const [a, b] of list) n += b - a + 1n;
    return n;
  }

  union(other: GtidSet): GtidSet {
    return this.combine(other, unionOf);
  }

  /** The GTIDs of this set that are not in `other`. */
  subtract(other: GtidSet): GtidSet {
    return this.combine(other, subtractionOf);
  }

  intersection(other: GtidSet): GtidSet {
    return this.combine(other, intersectionOf);
  }

  isSubsetOf(other: GtidSet): boolean {
    return this.subtract(other).isEmpty();
  }

  equals(other: GtidSet): boolean {
    return this.toString() === other.toString();
  }

  /** The first GTID of this set (in the printed order) that `other` lacks, e.g. for an error message. */
  firstNotIn(other: GtidSet): string | undefined {
    const rest = this.subtract(other);
    const key = rest.sortedKeys()[0];
    if (key === undefined) return undefined;
    return `${key}:${rest.byTsid.get(key)![0]![0]}`;
  }

  /**
   * MySQL's form: UUIDs in order, each with its untagged intervals then its tags in order, intervals merged
   * (`uuid:1-5:7:a:1-2,uuid2:3`); '' for the empty set. MySQL itself prints `,\n` between UUIDs; this prints
   * `,` so that the text fits on one line.
   */
  toString(): string {
    const out: string[] = [];
    let uuid = '';
    for (const key of this.sortedKeys()) {
      const [keyUuid, tag] = splitKey(key);
      const ranges = this.byTsid.get(key)!.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(':');
      const part = (tag ? `${tag}:` : '') + ranges;
      if (keyUuid === uuid) out[out.length - 1] += `:${part}`;
      else out.push(`${keyUuid}:${part}`);
      uuid = keyUuid;
    }
    return out.join(',');
  }

  private addElement(element: string, text: string): void {
    const [uuidText, ...parts] = element.split(':').map((p) => p.trim());
    const uuid = normalizeUuid(uuidText!, text);
    let tag = '';
    for (const part of parts) {
      if (TAG_RE.test(part)) {
        tag = part.toLowerCase();
        continue;
      }
      const m = INTERVAL_RE.exec(part);
      if (!m) throw malformed(text, `'${part}' is neither an interval (like 1-5 or 7) nor a tag`);
      const first = gnoOf(m[1]!, text);
      const last = m[2] === undefined ? first : gnoOf(m[2], text);
      if (last < first) throw malformed(text, `the interval ${part} ends before it starts`);
      this.addInterval(tsidKey(uuid, tag), [first, last]);
    }
  }

  private addInterval(key: string, iv: Interval): void {
    const list = this.byTsid.get(key);
    if (!list) {
      this.byTsid.set(key, [[iv[0], iv[1]]]);
      return;
    }
    const tail = list[list.length - 1]!;
    if (iv[0] > tail[1] + 1n) {
      list.push([iv[0], iv[1]]);
    } else if (iv[0] >= tail[0]) {
      if (iv[1] > tail[1]) tail[1] = iv[1]; // the common case: the next GTID of a run
    } else {
      this.byTsid.set(key, unionOf(list, [iv]));
    }
  }

  private combine(other: GtidSet, op: (a: Interval[], b: Interval[]) => Interval[]): GtidSet {
    const out = new GtidSet();
    for (const key of new Set([...this.byTsid.keys(), ...other.byTsid.keys()])) {
      const list = op(this.byTsid.get(key) ?? [], other.byTsid.get(key) ?? []);
      if (list.length) out.byTsid.set(key, list);
    }
    return out;
  }

  private sortedKeys(): string[] {
    return [...this.byTsid.keys()].sort(compareKeys);
  }
}

/** Parses `uuid:gno` or `uuid:tag:gno`. */
export function parseGtid(text: string): Gtid {
  const parts = text.split(':').map((p) => p.trim());
  const bad = (why: string): GtidSetError => new GtidSetError(`malformed GTID '${text}': ${why}`);
  if (parts.length !== 2 && parts.length !== 3) throw bad('expected uuid:number or uuid:tag:number');
  const uuid = normalizeUuid(parts[0]!, text);
  let tag = '';
  if (parts.length === 3) {
    if (!TAG_RE.test(parts[1]!)) throw bad(`'${parts[1]}' is not a tag (a letter or _, then up to 31 letters, digits or _)`);
    tag = parts[1]!.toLowerCase();
  }
  if (!/^\d+$/.test(parts.at(-1)!)) throw bad(`'${parts.at(-1)}' is not a transaction number`);
  return { uuid, tag, gno: gnoOf(parts.at(-1)!, text) };
}

export function formatGtid(g: Gtid): string {
  return g.tag ? `${g.uuid}:${g.tag}:${g.gno}` : `${g.uuid}:${g.gno}`;
}

// ---- helpers ----------------------------------------------------------------------------------------------

function checkedGtid(g: Gtid): Gtid {
  const text = formatGtid(g);
  if (g.tag && !TAG_RE.test(g.tag)) throw malformed(text, `'${g.tag}' is not a tag`);
  return { uuid: normalizeUuid(g.uuid, text), tag: g.tag.toLowerCase(), gno: checkedGno(g.gno, text) };
}

/** Like MySQL: with or without hyphens, optionally in braces. */
function normalizeUuid(text: string, whole: string): string {
  const m = UUID_RE.exec(/^\{.*\}$/.test(text) ? text.slice(1, -1) : text);
  if (!m) throw malformed(whole, `'${text}' is not a UUID`);
  return m.slice(1, 6).join('-').toLowerCase();
}

function gnoOf(digits: string, whole: string): bigint {
  return checkedGno(BigInt(digits), whole);
}

function checkedGno(gno: bigint, whole: string): bigint {
  if (gno < 1n || gno > MAX_GNO) throw malformed(whole, `transaction number ${gno} is outside 1..${MAX_GNO}`);
  return gno;
}

function malformed(text: string, why: string): GtidSetError {
  const shown = text.length > 200 ? `${text.slice(0, 200)}...` : text;
  return new GtidSetError(`malformed GTID set '${shown}': ${why}`);
}

function tsidKey(uuid: string, tag: string): string {
  return tag ? `${uuid}:${tag}` : uuid;
}

function splitKey(key: string): [uuid: string, tag: string] {
  return [key.slice(0, 36), key.slice(37)];
}

/** By UUID, then tag, the untagged one first: the order MySQL prints. */
function compareKeys(a: string, b: string): number {
  const [ua, ta] = splitKey(a);
  const [ub, tb] = splitKey(b);
  if (ua !== ub) return ua < ub ? -1 : 1;
  return ta === tb ? 0 : ta < tb ? -1 : 1;
}

/** Index of the last interval starting at or before `gno`, -1 when none. */
function lastStartingAtOrBefore(list: Interval[], gno: bigint): number {
  let lo = 0;
  let hi = list.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid]![0] <= gno) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

function unionOf(a: Interval[], b: Interval[]): Interval[] {
  const all = [...a, ...b].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const out: Interval[] = [];
  for (const [first, last] of all) {
    const tail = out[out.length - 1];
    if (tail && first <= tail[1] + 1n) {
      if (last > tail[1]) tail[1] = last;
    } else {
      out.push([first, last]);
    }
  }
  return out;
}

function subtractionOf(a: Interval[], b: Interval[]): Interval[] {
  const out: Interval[] = [];
  let j = 0;
  for (const [first, last] of a) {
    let from = first;
    while (j < b.length && b[j]![1] < from) j++;
    for (let k = j; k < b.length && b[k]![0] <= last && from <= last; k++) {
      const [bFirst, bLast] = b[k]!;
      if (bFirst > from) out.push([from, bFirst - 1n]);
      from = bLast + 1n;
    }
    if (from <= last) out.push([from, last]);
  }
  return out;
}

function intersectionOf(a: Interval[], b: Interval[]): Interval[] {
  const out: Interval[] = [];
  for (let i = 0, j = 0; i < a.length && j < b.length; ) {
    const first = a[i]![0] > b[j]![0] ? a[i]![0] : b[j]![0];
    const last = a[i]![1] < b[j]![1] ? a[i]![1] : b[j]![1];
    if (first <= last) out.push([first, last]);
    if (a[i]![1] < b[j]![1]) i++;
    else j++;
  }
  return out;
}
