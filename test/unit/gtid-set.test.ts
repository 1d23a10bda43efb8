// Unit tests of the GTID set maths: MySQL's text form (tags of 8.3+, whitespace as @@gtid_executed prints it),
// canonical printing, and the set operations.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { GtidSet, GtidSetError, formatGtid, parseGtid } from '../../src/binlog/gtid-set.ts';

const A = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
const B = 'c9efa1db-e8de-11f1-b3ba-02fc00000001';
const MAX = 9223372036854775807n; // 2^63-1

const set = (text: string): GtidSet => GtidSet.parse(text);
const str = (text: string): string => GtidSet.parse(text).toString();

describe('parsing and printing', () => {
  test('the empty set: empty text, whitespace, commas', () => {
    for (const text of ['', '  ', '\n', ',', ' , ,\n']) {
      assert.equal(set(text).isEmpty(), true, JSON.stringify(text));
      assert.equal(str(text), '');
    }
    assert.equal(new GtidSet().toString(), '');
    assert.equal(new GtidSet().count(), 0n);
  });

  test('a set as @@gtid_executed prints it comes back the same, without the newlines', () => {
    const printed = `${A}:1-5:7,\n${B}:1-3:10:mytag:1-2`;
    assert.equal(str(printed), `${A}:1-5:7,${B}:1-3:10:mytag:1-2`);
  });

  test('UUIDs sorted, intervals sorted and merged (overlapping and adjacent), duplicates folded', () => {
    assert.equal(str(`${B}:3,${A}:9-10:1-2:3:5-6:6-8:4,${B}:1-2`), `${A}:1-10,${B}:1-3`);
    assert.equal(str(`${A}:5:3:1`), `${A}:1:3:5`);
    assert.equal(str(`${A}:1-3:2-4:10-12:11`), `${A}:1-4:10-12`);
    assert.equal(str(`${A}:7-7`), `${A}:7`);
  });

  test('whitespace around every part, upper case UUIDs, UUIDs without hyphens or in braces', () => {
    assert.equal(str(`  ${A.toUpperCase()} : 1 - 5 : 7 ,\n\t${B}:2  `), `${A}:1-5:7,${B}:2`);
    assert.equal(str(`${A.replaceAll('-', '')}:1`), `${A}:1`);
    assert.equal(str(`{${A}}:1`), `${A}:1`);
  });

  test('tags: untagged first, tags sorted, lower-cased, a tag holds until the next comma', () => {
    assert.equal(str(`${A}:zz:1:aa:2-3:4`), `${A}:aa:2-4:zz:1`);
    assert.equal(str(`${A}:1-5:MyTag:3`), `${A}:1-5:mytag:3`);
    assert.equal(str(`${A}:mytag:3,${A}:1-5`), `${A}:1-5:mytag:3`);
    assert.equal(str(`${A}:t:1,${B}:1,${A}:2`), `${A}:2:t:1,${B}:1`);
    assert.equal(str(`${A}:_x9:1`), `${A}:_x9:1`);
    // A UUID or tag without intervals adds nothing (MySQL accepts it).
    assert.equal(str(`${A},${B}:tag`), '');
  });

  test('group numbers up to 2^63-1, exact', () => {
    assert.equal(str(`${A}:${MAX - 1n}-${MAX}:1`), `${A}:1:${MAX - 1n}-${MAX}`);
    assert.equal(set(`${A}:1-${MAX}`).count(), MAX);
    assert.equal(set(`${A}:9007199254740993`).contains(`${A}:9007199254740993`), true);
    assert.equal(set(`${A}:9007199254740993`).contains(`${A}:9007199254740992`), false);
  });

  test('malformed text is a GtidSetError naming the text and the part', () => {
    const bad: Array<[string, RegExp]> = [
      ['not-a-uuid:1', /'not-a-uuid' is not a UUID/],
      [`${A}:`, /'' is neither an interval/],
      [`${A}:0`, /transaction number 0 is outside/],
      [`${A}:${MAX + 1n}`, /outside 1\.\.9223372036854775807/],
      [`${A}:5-3`, /the interval 5-3 ends before it starts/],
      [`${A}:1-`, /'1-' is neither/],
      [`${A}:-1`, /'-1' is neither/],
      [`${A}:1x`, /'1x' is neither/],
      [`${A}:9tag:1`, /'9tag' is neither/],
      [`${A}:${'t'.repeat(33)}:1`, /is neither/],
      [`${A}:1;DROP TABLE x`, /is neither/],
      ['ANONYMOUS', /is not a UUID/],
    ];
    for (const [text, pattern] of bad) {
      assert.throws(
        () => GtidSet.parse(text),
        (err: unknown) => err instanceof GtidSetError && err.message.includes(`malformed GTID set '${text}'`) && pattern.test(err.message),
        text,
      );
    }
  });
});

describe('single GTIDs', () => {
  test('parseGtid and formatGtid, untagged and tagged', () => {
    assert.deepEqual(parseGtid(`${A.toUpperCase()}:42`), { uuid: A, tag: '', gno: 42n });
    assert.deepEqual(parseGtid(`${A}:MyTag:${MAX}`), { uuid: A, tag: 'mytag', gno: MAX });
    assert.equal(formatGtid({ uuid: A, tag: '', gno: 42n }), `${A}:42`);
    assert.equal(formatGtid({ uuid: A, tag: 'mytag', gno: 1n }), `${A}:mytag:1`);
    for (const text of [A, `${A}:1-2`, `${A}:0`, `${A}:t:a:1`, `${A}:9t:1`, 'x:1']) {
      assert.throws(() => parseGtid(text), GtidSetError, text);
    }
  });

  test('add extends runs in place, merges out-of-order GTIDs, and returns the set', () => {
    const s = new GtidSet();
    assert.equal(s.add(`${A}:1`), s);
    for (let gno = 2n; gno <= 1000n; gno++) s.add({ uuid: A, tag: '', gno });
    s.add(`${A}:1005`).add(`${A}:1003`).add(`${A}:1001`).add(`${A}:1002`).add(`${A}:500`);
    s.add(`${B}:t:1`).add(`${A}:1004`);
    assert.equal(s.toString(), `${A}:1-1005,${B}:t:1`);
    assert.equal(s.count(), 1006n);
    assert.equal(GtidSet.of(`${B}:2`, `${A}:1`, { uuid: A, tag: 'x', gno: 3n }).toString(), `${A}:1:x:3,${B}:2`);
  });

  test('contains, tag-sensitive', () => {
    const s = set(`${A}:1-5:7:10-20:t:3`);
    for (const gno of [1, 5, 7, 10, 15, 20]) assert.equal(s.contains(`${A}:${gno}`), true, `${gno}`);
    for (const gno of [6, 8, 9, 21, 100]) assert.equal(s.contains(`${A}:${gno}`), false, `${gno}`);
    assert.equal(s.contains(`${A}:t:3`), true);
    assert.equal(s.contains(`${A}:T:3`), true);
    assert.equal(s.contains(`${A}:t:1`), false);
    assert.equal(s.contains(`${A}:u:3`), false);
    assert.equal(s.contains(`${B}:1`), false);
    assert.equal(s.contains({ uuid: A.toUpperCase(), tag: '', gno: 4n }), true);
  });
});

describe('set operations', () => {
  const x = set(`${A}:1-10:20-30:t:1-5,${B}:1-3`);
  const y = set(`${A}:5-25:t:5-9,${B}:4-6`);

  test('union', () => {
    assert.equal(x.union(y).toString(), `${A}:1-30:t:1-9,${B}:1-6`);
    assert.equal(x.union(new GtidSet()).toString(), x.toString());
  });

  test('subtract', () => {
    assert.equal(x.subtract(y).toString(), `${A}:1-4:26-30:t:1-4,${B}:1-3`);
    assert.equal(y.subtract(x).toString(), `${A}:11-19:t:6-9,${B}:4-6`);
    assert.equal(x.subtract(x).toString(), '');
    assert.equal(set(`${A}:1-100`).subtract(set(`${A}:2:4-5:50-60:100`)).toString(), `${A}:1:3:6-49:61-99`);
    assert.equal(set(`${A}:1-3:7-9`).subtract(set(`${A}:2-8`)).toString(), `${A}:1:9`);
  });

  test('intersection', () => {
    assert.equal(x.intersection(y).toString(), `${A}:5-10:20-25:t:5`);
    assert.equal(set(`${A}:1-3:5-7:9-11`).intersection(set(`${A}:2-10`)).toString(), `${A}:2-3:5-7:9-10`);
    assert.equal(x.intersection(new GtidSet()).isEmpty(), true);
  });

  test('isSubsetOf and equals', () => {
    assert.equal(set(`${A}:2-4:t:2`).isSubsetOf(x), true);
    assert.equal(set('').isSubsetOf(x), true);
    assert.equal(x.isSubsetOf(x), true);
    assert.equal(x.isSubsetOf(y), false);
    assert.equal(set(`${A}:u:1`).isSubsetOf(x), false);
    assert.equal(set(`${B}:1-3,${A}:20-30:1-10:t:1-5`).equals(x), true);
    assert.equal(x.equals(y), false);
  });

  test('firstNotIn: the first missing GTID in printed order, undefined for a subset', () => {
    assert.equal(x.firstNotIn(y), `${A}:1`);
    assert.equal(y.firstNotIn(x), `${A}:11`);
    assert.equal(set(`${A}:1-5:t:1,${B}:9`).firstNotIn(set(`${A}:1-5`)), `${A}:t:1`);
    assert.equal(set(`${B}:9,${A}:1-5`).firstNotIn(set(`${A}:1-5`)), `${B}:9`);
    assert.equal(set(`${A}:1-5`).firstNotIn(set(`${A}:1-10`)), undefined);
  });

  test('operations leave their operands unchanged', () => {
    const before = [x.toString(), y.toString()];
    x.union(y);
    x.subtract(y);
    x.intersection(y);
    assert.deepEqual([x.toString(), y.toString()], before);
  });
});
