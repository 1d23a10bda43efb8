import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  daysLeft,
  defaultRetentionPolicy,
  expiresAt,
  planExpiry,
  type ExpiryDecision,
  type RetentionPolicy,
  type RetentionRow,
} from '../../src/retention/index.ts';

const t = (s: string): Date => new Date(s);
const DAY = 24 * 60 * 60 * 1000;

let nextId = 1;
function row(p: Partial<RetentionRow> & Pick<RetentionRow, 'startTime'>): RetentionRow {
  const id = p.id ?? nextId++;
  const type = p.type ?? 'full';
  return {
    id,
    instanceId: p.instanceId ?? 'inst-1',
    type,
    state: p.state ?? 'Completed',
    startTime: p.startTime,
    endTime: p.endTime ?? new Date(p.startTime.getTime() + 10 * 60 * 1000),
    objectKey: p.objectKey ?? `${type}/${id}`,
    isDelete: p.isDelete ?? false,
    ...(p.binlogFile !== undefined ? { binlogFile: p.binlogFile } : {}),
    ...(p.verifyFailed !== undefined ? { verifyFailed: p.verifyFailed } : {}),
  };
}

const policy = (p: Partial<RetentionPolicy> = {}): RetentionPolicy => ({ ...defaultRetentionPolicy, ...p });

/** id -> action, for compact assertions. */
function actions(decisions: ExpiryDecision[]): Record<number, 'delete' | 'keep'> {
  return Object.fromEntries(decisions.map((d) => [d.row.id, d.action]));
}
function deletedIds(decisions: ExpiryDecision[]): number[] {
  return decisions.filter((d) => d.action === 'delete').map((d) => d.row.id);
}
function decisionFor(decisions: ExpiryDecision[], id: number): ExpiryDecision {
  const d = decisions.find((x) => x.row.id === id);
  assert.ok(d, `no decision for #${id}`);
  return d;
}
/** Marks deleted rows the way the expire job will (is_delete=1, state Expiration). */
function apply(rows: RetentionRow[], decisions: ExpiryDecision[]): RetentionRow[] {
  const del = new Set(deletedIds(decisions));
  return rows.map((r) => (del.has(r.id) ? { ...r, isDelete: true, state: 'Expiration' } : r));
}

describe('defaultRetentionPolicy', () => {
  it('matches the seed default of 7 days and protects one full backup and its binlogs', () => {
    assert.deepEqual({ ...defaultRetentionPolicy }, {
      fullDays: 7,
      binlogDays: 7,
      minFullBackups: 1,
      keepBinlogsForOldestFull: true,
    });
  });
});

describe('daysLeft', () => {
  const r = row({ startTime: t('2026-11-10T02:00:00.000Z') });

  it('is the full retention right after the backup', () => {
    assert.equal(daysLeft(r, 7, t('2026-11-10T02:00:00.000Z')), 7);
    assert.equal(daysLeft(r, 7, t('2026-11-10T02:00:00.001Z')), 7);
    assert.equal(daysLeft(r, 7, t('2026-11-11T01:59:59.999Z')), 7);
    assert.equal(daysLeft(r, 7, t('2026-11-11T02:00:00.000Z')), 6);
  });

  it('is 1 until the exact moment of expiry and 0 at it', () => {
    assert.equal(daysLeft(r, 7, t('2026-11-17T01:59:59.999Z')), 1);
    assert.equal(daysLeft(r, 7, t('2026-11-17T02:00:00.000Z')), 0);
  });

  it('is never negative (and never -0)', () => {
    assert.equal(daysLeft(r, 7, t('2026-11-17T02:00:00.001Z')), 0);
    assert.equal(daysLeft(r, 7, t('2027-11-17T02:00:00.000Z')), 0);
    assert.ok(Object.is(daysLeft(r, 7, t('2026-11-17T14:00:00.000Z')), 0));
    assert.equal(daysLeft(r, 0, t('2026-11-10T02:00:00.000Z')), 0);
  });

  it('counts 24 h days, independent of the calendar (a backup from the future keeps more than days)', () => {
    assert.equal(daysLeft(r, 7, t('2026-11-09T02:00:00.000Z')), 8);
    assert.equal(daysLeft(r, 1.5, t('2026-11-10T02:00:00.000Z')), 2);
  });

  it('expiresAt is startTime + days * 24 h', () => {
    assert.equal(expiresAt(r, 7).toISOString(), '2026-11-17T02:00:00.000Z');
  });

  it('rejects invalid input', () => {
    assert.throws(() => daysLeft(r, -1, t('2026-11-10T00:00:00Z')), RangeError);
    assert.throws(() => daysLeft(r, Number.NaN, t('2026-11-10T00:00:00Z')), RangeError);
    assert.throws(() => daysLeft(r, 7, new Date('nope')), RangeError);
    assert.throws(() => daysLeft(row({ startTime: new Date('nope') }), 7, t('2026-11-10T00:00:00Z')), RangeError);
  });
});

describe('planExpiry: basic rules', () => {
  it('deletes an expired Completed full when a newer full is kept, with a reason naming the rule', () => {
    const old = row({ startTime: t('2026-11-01T02:00:00.000Z') });
    const recent = row({ startTime: t('2026-11-09T02:00:00.000Z') });
    const d = planExpiry([old, recent], policy(), t('2026-11-10T09:30:00.000Z'));
    assert.equal(d.length, 2);
    assert.equal(decisionFor(d, old.id).action, 'delete');
    assert.equal(
      decisionFor(d, old.id).reason,
      'expired: completed full backup started 2026-11-01T02:00:00.000Z, expired 2026-11-08T02:00:00.000Z, retention 7 d',
    );
    assert.equal(decisionFor(d, old.id).daysLeft, 0);
    assert.equal(decisionFor(d, recent.id).action, 'keep');
    assert.match(decisionFor(d, recent.id).reason, /^kept: within retention/);
    assert.equal(decisionFor(d, recent.id).daysLeft, 6);
  });

  it('expires exactly at startTime + days, not a millisecond earlier', () => {
    const old = row({ startTime: t('2026-11-01T02:00:00.000Z') });
    const recent = row({ startTime: t('2026-11-07T02:00:00.000Z') });
    const rows = [old, recent];
    assert.equal(actions(planExpiry(rows, policy(), t('2026-11-08T01:59:59.999Z')))[old.id], 'keep');
    assert.equal(actions(planExpiry(rows, policy(), t('2026-11-08T02:00:00.000Z')))[old.id], 'delete');
  });

  it('returns one decision per row, in input order, without mutating the input', () => {
    const rows = [
      row({ startTime: t('2026-10-01T00:00:00Z'), type: 'binlog' }),
      row({ startTime: t('2026-10-02T00:00:00Z') }),
      row({ startTime: t('2026-10-03T00:00:00Z'), state: 'Error' }),
      row({ startTime: t('2026-10-04T00:00:00Z') }),
    ];
    const snapshot = structuredClone(rows);
    const d = planExpiry(rows, policy(), t('2026-11-10T00:00:00Z'));
    assert.deepEqual(d.map((x) => x.row), rows);
    d.forEach((x, i) => assert.equal(x.row, rows[i]));
    assert.deepEqual(rows, snapshot);
    assert.deepEqual(planExpiry([], policy(), t('2026-11-10T00:00:00Z')), []);
  });

  it('rejects an invalid policy or now', () => {
    const rows = [row({ startTime: t('2026-11-01T00:00:00Z') })];
    const now = t('2026-11-10T00:00:00Z');
    assert.throws(() => planExpiry(rows, policy({ fullDays: -1 }), now), RangeError);
    assert.throws(() => planExpiry(rows, policy({ binlogDays: Number.POSITIVE_INFINITY }), now), RangeError);
    assert.throws(() => planExpiry(rows, policy({ minFullBackups: 1.5 }), now), RangeError);
    assert.throws(() => planExpiry(rows, policy({ minFullBackups: -1 }), now), RangeError);
    assert.throws(() => planExpiry(rows, policy(), new Date(Number.NaN)), RangeError);
  });
});

describe('planExpiry: idempotent, computed from timestamps', () => {
  // A daily full at 02:00 for 20 days.
  const fulls = Array.from({ length: 20 }, (_, i) =>
    row({ instanceId: 'idem', startTime: new Date(Date.parse('2026-11-01T02:00:00.000Z') + i * DAY) }),
  );

  it('same-day reruns give the same plan (retention is not halved by running twice a day)', () => {
    const morning = t('2026-11-20T09:30:00.000Z');
    const evening = t('2026-11-20T21:30:00.000Z');
    const first = planExpiry(fulls, policy(), morning);
    const again = planExpiry(fulls, policy(), morning);
    assert.deepEqual(again, first);
    // Later the same day, the set of deleted rows is the same: nothing expires between 02:00 and 02:00.
    assert.deepEqual(deletedIds(planExpiry(fulls, policy(), evening)), deletedIds(first));
    // Started after 2026-11-13 09:30 (the 14th..20th): within 7 days -> 7 kept, 13 deleted (1st..13th).
    assert.equal(deletedIds(first).length, 13);
    assert.ok(deletedIds(first).every((id) => id <= (fulls[12]?.id ?? -1)));
  });

  it('applying the plan and re-running with the same now deletes nothing more', () => {
    const now = t('2026-11-20T09:30:00.000Z');
    const first = planExpiry(fulls, policy(), now);
    const after = apply(fulls, first);
    const second = planExpiry(after, policy(), now);
    assert.deepEqual(deletedIds(second), []);
    for (const id of deletedIds(first)) {
      assert.match(decisionFor(second, id).reason, /^kept: already deleted \(is_delete=1\)/);
    }
  });

  it('reruns every hour for a week never delete a backup before its 7 days', () => {
    const rows = [
      row({ instanceId: 'hourly', startTime: t('2026-11-01T02:00:00.000Z') }),
      row({ instanceId: 'hourly', startTime: t('2026-11-02T02:00:00.000Z') }),
    ];
    const first = rows[0];
    assert.ok(first);
    for (let h = 0; h < 7 * 24; h++) {
      const now = new Date(Date.parse('2026-11-01T02:00:00.000Z') + h * 3600_000);
      const d = planExpiry(rows, policy(), now);
      assert.equal(decisionFor(d, first.id).action, 'keep', `deleted too early at ${now.toISOString()}`);
      assert.equal(decisionFor(d, first.id).daysLeft, 7 - Math.floor(h / 24));
    }
    const d = planExpiry(rows, policy(), t('2026-11-08T02:00:00.000Z'));
    assert.equal(decisionFor(d, first.id).action, 'delete');
  });

  it('skipped days do not extend retention: one late run deletes everything that expired meanwhile', () => {
    const now = t('2026-11-20T09:30:00.000Z');
    // Daily runs from the 10th to the 20th, applying each plan ...
    let daily = fulls;
    for (let day = 10; day <= 20; day++) {
      const at = t(`2026-11-${String(day)}T09:30:00.000Z`);
      daily = apply(daily, planExpiry(daily, policy(), at));
    }
    // ... end in the same state as a single run on the 20th after skipping ten days.
    const skipped = apply(fulls, planExpiry(fulls, policy(), now));
    assert.deepEqual(skipped, daily);
    assert.deepEqual(
      planExpiry(daily, policy(), now).map((x) => x.daysLeft),
      planExpiry(skipped, policy(), now).map((x) => x.daysLeft),
    );
  });
});

describe('planExpiry: min_full_backups', () => {
  it('protects an expired single full backup', () => {
    const only = row({ instanceId: 'single', startTime: t('2026-10-01T02:00:00.000Z') });
    const [d] = planExpiry([only], policy(), t('2026-11-10T09:30:00.000Z'));
    assert.ok(d);
    assert.equal(d.action, 'keep');
    assert.match(d.reason, /^kept: newest completed full backup \(min_full_backups=1\)/);
    assert.equal(d.daysLeft, 0);
  });

  it('keeps the newest N by recovery point, deletes older expired ones', () => {
    const a = row({ startTime: t('2026-10-01T02:00:00Z') });
    const b = row({ startTime: t('2026-10-02T02:00:00Z') });
    const c = row({ startTime: t('2026-10-03T02:00:00Z') });
    const d = planExpiry([c, a, b], policy({ minFullBackups: 2 }), t('2026-11-10T00:00:00Z'));
    assert.deepEqual(actions(d), { [a.id]: 'delete', [b.id]: 'keep', [c.id]: 'keep' });
    assert.match(decisionFor(d, b.id).reason, /min_full_backups=2/);
  });

  it('minFullBackups=0 lets the last expired full go', () => {
    const only = row({ startTime: t('2026-10-01T02:00:00Z') });
    assert.deepEqual(deletedIds(planExpiry([only], policy({ minFullBackups: 0 }), t('2026-11-10T00:00:00Z'))), [
      only.id,
    ]);
  });

  it('only Completed, not deleted fulls count: an Uploading, Error or deleted full does not protect', () => {
    const completed = row({ startTime: t('2026-10-01T02:00:00Z') });
    const uploading = row({ startTime: t('2026-11-09T02:00:00Z'), state: 'Uploading' });
    const failed = row({ startTime: t('2026-11-08T02:00:00Z'), state: 'Error' });
    const gone = row({ startTime: t('2026-10-05T02:00:00Z'), state: 'Expiration', isDelete: true });
    const goneCompleted = row({ startTime: t('2026-10-06T02:00:00Z'), isDelete: true });
    const d = planExpiry([completed, uploading, failed, gone, goneCompleted], policy(), t('2026-11-10T00:00:00Z'));
    assert.equal(decisionFor(d, completed.id).action, 'keep');
    assert.match(decisionFor(d, completed.id).reason, /newest completed full backup/);
    assert.deepEqual(deletedIds(d), []);
  });
});

describe('planExpiry: full backup chain and binlogs', () => {
  // Fulls F1, F2, F3 on Nov 1, 4, 7 at 02:00, recovery point 02:10.
  // Binlogs b1..b10: b_i holds [Nov i 00:00, Nov i+1 00:00).
  const inst = 'chain';
  const F1 = row({ id: 101, instanceId: inst, startTime: t('2026-11-01T02:00:00Z'), endTime: t('2026-11-01T02:10:00Z') });
  const F2 = row({ id: 102, instanceId: inst, startTime: t('2026-11-04T02:00:00Z'), endTime: t('2026-11-04T02:10:00Z') });
  const F3 = row({ id: 103, instanceId: inst, startTime: t('2026-11-07T02:00:00Z'), endTime: t('2026-11-07T02:10:00Z') });
  const binlogs = Array.from({ length: 10 }, (_, k) => {
    const i = k + 1;
    return row({
      id: i,
      instanceId: inst,
      type: 'binlog',
      startTime: new Date(Date.parse('2026-11-01T00:00:00Z') + k * DAY),
      endTime: new Date(Date.parse('2026-11-01T00:00:00Z') + i * DAY),
    });
  });
  const rows = [F1, ...binlogs.slice(0, 5), F2, ...binlogs.slice(5), F3];
  const chainPolicy = policy({ fullDays: 7, binlogDays: 3 });

  it('keeps the binlogs that roll forward from the oldest kept full, deletes those before it', () => {
    // Nov 11 12:00: F1, F2 expired; F3 kept (within retention) and is the oldest kept full.
    // Binlogs b1..b8 are expired (binlogDays 3); b7 holds F3's recovery point, b8 follows it.
    const d = planExpiry(rows, chainPolicy, t('2026-11-11T12:00:00Z'));
    assert.deepEqual(actions(d), {
      101: 'delete',
      102: 'delete',
      103: 'keep',
      1: 'delete',
      2: 'delete',
      3: 'delete',
      4: 'delete',
      5: 'delete',
      6: 'delete',
      7: 'keep',
      8: 'keep',
      9: 'keep',
      10: 'keep',
    });
    const needed = 'kept: needed to roll forward from full backup #103 (recovery point 2026-11-07T02:10:00.000Z)';
    assert.equal(decisionFor(d, 7).reason, needed);
    assert.equal(decisionFor(d, 8).reason, needed);
    assert.match(decisionFor(d, 9).reason, /^kept: within retention/);
    assert.match(decisionFor(d, 103).reason, /^kept: within retention/);
    assert.match(decisionFor(d, 6).reason, /^expired: completed binlog backup/);
  });

  it('when every full has expired, the newest full and its binlogs still survive', () => {
    const d = planExpiry(rows, chainPolicy, t('2026-12-01T00:00:00Z'));
    assert.deepEqual(deletedIds(d).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 101, 102]);
    assert.match(decisionFor(d, 103).reason, /^kept: newest completed full backup \(min_full_backups=1\)/);
    for (const id of [7, 8, 9, 10]) assert.match(decisionFor(d, id).reason, /needed to roll forward from full backup #103/);
  });

  it('anchors on the oldest kept full, not the newest', () => {
    // Nov 9 12:00 with fullDays 7: F1 expired, F2 (Nov 11) and F3 kept -> anchor F2 (recovery point Nov 4 02:10).
    const d = planExpiry(rows, chainPolicy, t('2026-11-09T12:00:00Z'));
    assert.deepEqual(deletedIds(d).sort((a, b) => a - b), [1, 2, 3, 101]);
    assert.match(decisionFor(d, 4).reason, /full backup #102 \(recovery point 2026-11-04T02:10:00.000Z\)/);
  });

  it('a binlog ending exactly at the recovery point is not needed; one ending just after it is', () => {
    const full = row({ instanceId: 'edge', startTime: t('2026-11-01T02:00:00Z'), endTime: t('2026-11-01T02:10:00Z') });
    const before = row({ instanceId: 'edge', type: 'binlog', startTime: t('2026-11-01T00:00:00Z'), endTime: t('2026-11-01T02:10:00Z') });
    const after = row({ instanceId: 'edge', type: 'binlog', startTime: t('2026-11-01T00:00:00Z'), endTime: t('2026-11-01T02:10:00.001Z') });
    const d = planExpiry([full, before, after], policy({ binlogDays: 1 }), t('2026-11-05T00:00:00Z'));
    assert.deepEqual(actions(d), { [full.id]: 'keep', [before.id]: 'delete', [after.id]: 'keep' });
  });

  it('keepBinlogsForOldestFull=false lets expired binlogs go on their own retention', () => {
    const d = planExpiry(rows, policy({ fullDays: 7, binlogDays: 3, keepBinlogsForOldestFull: false }), t('2026-11-11T12:00:00Z'));
    assert.deepEqual(deletedIds(d).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 101, 102]);
  });

  it('with no kept Completed full, binlogs are kept only while not expired', () => {
    // On Nov 11 F3 is within retention, so it still anchors b7 even with minFullBackups=0 ...
    const d = planExpiry(rows, policy({ fullDays: 7, binlogDays: 3, minFullBackups: 0 }), t('2026-11-11T12:00:00Z'));
    assert.match(decisionFor(d, 7).reason, /needed to roll forward from full backup #103/);
    // ... on Nov 25 every full has expired and none is protected: binlogs follow their own retention.
    const late = planExpiry(rows, policy({ fullDays: 7, binlogDays: 30, minFullBackups: 0 }), t('2026-11-25T00:00:00Z'));
    assert.deepEqual(deletedIds(late).sort((a, b) => a - b), [101, 102, 103]);
    assert.ok(binlogs.every((b) => /^kept: within retention/.test(decisionFor(late, b.id).reason)));
    const later = planExpiry(rows, policy({ fullDays: 7, binlogDays: 3, minFullBackups: 0 }), t('2026-11-25T00:00:00Z'));
    assert.equal(deletedIds(later).length, rows.length);
  });

  it('an instance with only binlogs: expired ones go, recent ones stay', () => {
    const old = row({ instanceId: 'binlog-only', type: 'binlog', startTime: t('2026-11-01T00:00:00Z'), endTime: t('2026-11-02T00:00:00Z') });
    const fresh = row({ instanceId: 'binlog-only', type: 'binlog', startTime: t('2026-11-09T00:00:00Z'), endTime: t('2026-11-10T00:00:00Z') });
    const d = planExpiry([old, fresh], policy(), t('2026-11-10T00:00:00Z'));
    assert.deepEqual(actions(d), { [old.id]: 'delete', [fresh.id]: 'keep' });
  });
});

describe('planExpiry: states', () => {
  const ancient = t('2026-01-01T00:00:00Z');
  const now = t('2026-11-10T00:00:00Z');

  it('keeps rows in non-final states, however old', () => {
    for (const state of ['Doing', 'Done', 'Tar', 'Uploading', 'Clearing']) {
      for (const type of ['full', 'binlog'] as const) {
        const r = row({ instanceId: `nf-${state}-${type}`, type, state, startTime: ancient });
        const [d] = planExpiry([r], policy({ minFullBackups: 0 }), now);
        assert.ok(d);
        assert.equal(d.action, 'keep');
        assert.equal(d.reason, `kept: state ${state} is not final`);
        assert.equal(d.daysLeft, 0);
      }
    }
  });

  it('leaves Error and Expiration rows alone', () => {
    const err = row({ state: 'Error', startTime: ancient });
    const exp = row({ state: 'Expiration', startTime: ancient });
    const errBinlog = row({ state: 'Error', type: 'binlog', startTime: ancient });
    const d = planExpiry([err, exp, errBinlog], policy({ minFullBackups: 0 }), now);
    assert.deepEqual(deletedIds(d), []);
    assert.match(decisionFor(d, err.id).reason, /^kept: state Error is left alone/);
    assert.match(decisionFor(d, errBinlog.id).reason, /^kept: state Error is left alone/);
    assert.match(decisionFor(d, exp.id).reason, /^kept: state Expiration is left alone/);
  });

  it('never deletes a row already marked is_delete, nor unknown states or invalid timestamps', () => {
    const deleted = row({ isDelete: true, startTime: ancient });
    const odd = row({ state: 'completed', startTime: ancient });
    const bad = row({ startTime: new Date('0000-00-00 00:00:00') });
    const d = planExpiry([deleted, odd, bad], policy({ minFullBackups: 0 }), now);
    assert.deepEqual(deletedIds(d), []);
    assert.match(decisionFor(d, deleted.id).reason, /already deleted/);
    assert.match(decisionFor(d, odd.id).reason, /^kept: unknown state "completed"/);
    assert.match(decisionFor(d, bad.id).reason, /^kept: invalid start_time\/end_time/);
    assert.equal(decisionFor(d, bad.id).daysLeft, 7);
  });
});

describe('planExpiry: several instances', () => {
  it('plans each instance on its own, rows interleaved', () => {
    const now = t('2026-11-20T00:00:00Z');
    // Instance A: two expired fulls (newest protected) and binlogs around its recovery point.
    const aOld = row({ instanceId: 'A', startTime: t('2026-11-01T02:00:00Z'), endTime: t('2026-11-01T02:10:00Z') });
    const aNew = row({ instanceId: 'A', startTime: t('2026-11-05T02:00:00Z'), endTime: t('2026-11-05T02:10:00Z') });
    const aBinBefore = row({ instanceId: 'A', type: 'binlog', startTime: t('2026-11-03T00:00:00Z'), endTime: t('2026-11-04T00:00:00Z') });
    const aBinAfter = row({ instanceId: 'A', type: 'binlog', startTime: t('2026-11-05T00:00:00Z'), endTime: t('2026-11-06T00:00:00Z') });
    // Instance B: no full at all; its expired binlog after A's recovery point is NOT protected by A.
    const bBinOld = row({ instanceId: 'B', type: 'binlog', startTime: t('2026-11-05T00:00:00Z'), endTime: t('2026-11-06T00:00:00Z') });
    const bBinNew = row({ instanceId: 'B', type: 'binlog', startTime: t('2026-11-19T00:00:00Z'), endTime: t('2026-11-20T00:00:00Z') });
    // Instance C: a single expired full, protected on its own (A's fulls do not count for C).
    const cOnly = row({ instanceId: 'C', startTime: t('2026-10-01T02:00:00Z') });
    const rows = [aOld, bBinOld, cOnly, aBinBefore, bBinNew, aNew, aBinAfter];
    const d = planExpiry(rows, policy(), now);
    assert.deepEqual(d.map((x) => x.row.id), rows.map((r) => r.id));
    assert.deepEqual(actions(d), {
      [aOld.id]: 'delete',
      [aNew.id]: 'keep',
      [aBinBefore.id]: 'delete',
      [aBinAfter.id]: 'keep',
      [bBinOld.id]: 'delete',
      [bBinNew.id]: 'keep',
      [cOnly.id]: 'keep',
    });
    assert.match(decisionFor(d, aBinAfter.id).reason, new RegExp(`full backup #${aNew.id} `));
    assert.match(decisionFor(d, cOnly.id).reason, /newest completed full backup/);
  });

  it('gives the same decisions whether instances are planned together or apart', () => {
    const now = t('2026-11-20T00:00:00Z');
    const mk = (instanceId: string) => [
      row({ instanceId, startTime: t('2026-11-01T02:00:00Z') }),
      row({ instanceId, startTime: t('2026-11-15T02:00:00Z') }),
      row({ instanceId, type: 'binlog', startTime: t('2026-11-01T00:00:00Z'), endTime: t('2026-11-02T00:00:00Z') }),
      row({ instanceId, type: 'binlog', startTime: t('2026-11-15T00:00:00Z'), endTime: t('2026-11-16T00:00:00Z') }),
    ];
    const x = mk('X');
    const y = mk('Y');
    const together = planExpiry([...x, ...y], policy(), now);
    const apart = [...planExpiry(x, policy(), now), ...planExpiry(y, policy(), now)];
    assert.deepEqual(together, apart);
  });
});

describe('planExpiry: the clone binlog file of the kept full', () => {
  // The full's consistent point is in mysql-bin.000041 (clone_status BINLOG_FILE); the log rotated to .000042
  // at 02:09:55, before the clone finished (END_TIME 02:10:00). By time alone .000041 (ends 02:09:55, before the
  // recovery point) would be deleted, and the transactions after the consistent point with it.
  const inst = 'rotated';
  const full = (file: string | null) =>
    row({ id: 201, instanceId: inst, startTime: t('2026-11-07T02:00:00Z'), endTime: t('2026-11-07T02:10:00Z'), binlogFile: file });
  const b40 = row({ id: 240, instanceId: inst, type: 'binlog', binlogFile: 'mysql-bin.000040', startTime: t('2026-11-06T00:00:00Z'), endTime: t('2026-11-07T00:00:00Z') });
  const b41 = row({ id: 241, instanceId: inst, type: 'binlog', binlogFile: 'mysql-bin.000041', startTime: t('2026-11-07T00:00:00Z'), endTime: t('2026-11-07T02:09:55Z') });
  const b42 = row({ id: 242, instanceId: inst, type: 'binlog', binlogFile: 'mysql-bin.000042', startTime: t('2026-11-07T02:09:55Z'), endTime: t('2026-11-08T00:00:00Z') });
  // An older series of the same name (before a RESET BINARY LOGS): numbered higher, but ended long before the clone.
  const old99 = row({ id: 299, instanceId: inst, type: 'binlog', binlogFile: 'mysql-bin.000099', startTime: t('2026-10-01T00:00:00Z'), endTime: t('2026-10-02T00:00:00Z') });
  const now = t('2026-11-12T00:00:00Z'); // every binlog expired (binlogDays 1), the full within retention

  it('keeps the file holding the consistent point although it ended before END_TIME', () => {
    const d = planExpiry([full('mysql-bin.000041'), b40, b41, b42, old99], policy({ binlogDays: 1 }), now);
    assert.deepEqual(actions(d), { 201: 'keep', 240: 'delete', 241: 'keep', 242: 'keep', 299: 'delete' });
    assert.match(decisionFor(d, 241).reason, /needed to roll forward from full backup #201/);
  });

  it('a full without the file (seed-era row) keeps the time rule', () => {
    const d = planExpiry([full(null), b40, b41, b42, old99], policy({ binlogDays: 1 }), now);
    assert.deepEqual(actions(d), { 201: 'keep', 240: 'delete', 241: 'delete', 242: 'keep', 299: 'delete' });
  });
});

describe('planExpiry: a full whose restore test failed', () => {
  const now = t('2026-03-30T00:00:00Z');
  it('is never the protected newest full: the older verified one is kept, with the binlogs it needs', () => {
    const good = row({ startTime: t('2026-03-01T00:00:00Z'), endTime: t('2026-03-01T00:10:00Z') });
    const bad = row({ startTime: t('2026-03-10T00:00:00Z'), endTime: t('2026-03-10T00:10:00Z'), verifyFailed: true });
    const between = row({ type: 'binlog', startTime: t('2026-03-05T00:00:00Z'), endTime: t('2026-03-06T00:00:00Z'), binlogFile: 'b.000002' });
    const decisions = planExpiry([good, bad, between], policy(), now);
    assert.equal(decisionFor(decisions, good.id).action, 'keep');
    assert.match(decisionFor(decisions, good.id).reason, /newest completed full/);
    assert.equal(decisionFor(decisions, between.id).action, 'keep', 'binlogs after the good full stay: it is the anchor');
    assert.equal(decisionFor(decisions, bad.id).action, 'keep', 'no verified full is newer than the failed one: it stays too');
    assert.match(decisionFor(decisions, bad.id).reason, /restore test failed/);
  });
  it('once a verified full is newer, the failed one follows its own retention', () => {
    const bad = row({ startTime: t('2026-03-01T00:00:00Z'), verifyFailed: true });
    const good = row({ startTime: t('2026-03-10T00:00:00Z') });
    const decisions = planExpiry([bad, good], policy(), now);
    assert.deepEqual(actions(decisions), { [bad.id]: 'delete', [good.id]: 'keep' });
  });
  it('when every full failed its test, the newest ones and their binlogs are still kept', () => {
    const bad1 = row({ startTime: t('2026-03-01T00:00:00Z'), endTime: t('2026-03-01T00:10:00Z'), verifyFailed: true });
    const bad2 = row({ startTime: t('2026-03-05T00:00:00Z'), endTime: t('2026-03-05T00:10:00Z'), verifyFailed: true });
    const log = row({ type: 'binlog', startTime: t('2026-03-05T00:00:00Z'), endTime: t('2026-03-06T00:00:00Z'), binlogFile: 'b.000003' });
    const decisions = planExpiry([bad1, bad2, log], policy(), now);
    assert.deepEqual(actions(decisions), { [bad1.id]: 'delete', [bad2.id]: 'keep', [log.id]: 'keep' });
  });
  it('a failed full still within retention is kept, but protects nothing', () => {
    const good = row({ startTime: t('2026-03-01T00:00:00Z') });
    const bad = row({ startTime: t('2026-03-28T00:00:00Z'), verifyFailed: true });
    const decisions = planExpiry([good, bad], policy(), now);
    assert.deepEqual(actions(decisions), { [good.id]: 'keep', [bad.id]: 'keep' });
    assert.match(decisionFor(decisions, good.id).reason, /newest completed full/);
  });
});
