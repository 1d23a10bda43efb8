// Named locks of the metadata center: namespaced by metadata database, at most 64 characters, held on a
// connection of their own (the locked code may use every connection of the pool), and gone with a dead holder.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import type { RowDataPacket } from 'mysql2/promise';
import { metadataLockName } from '../../src/metadata/locks.ts';
import { MetadataStore } from '../../src/metadata/index.ts';
import { assertBackupInvariants } from '../support/invariants.ts';
import { createWorld, type World } from '../support/world.ts';

let world: World;

before(async () => {
  world = await createWorld();
});
after(async () => {
  await world?.cleanup();
});

test('lock names carry the metadata database and never exceed 64 characters', () => {
  assert.equal(metadataLockName('op_service_db', 'full', 7), 'mcb_full_op_service_db_7');
  assert.notEqual(metadataLockName('db_a', 'full', 7), metadataLockName('db_b', 'full', 7));
  const long = metadataLockName('a_metadata_database_with_a_rather_long_name', 'backup', '0ddba110-0000-4000-8000-000000000001');
  assert.ok(long.length <= 64, long);
  assert.match(long, /^mcb_backup_[0-9a-f]{40}$/);
  assert.notEqual(long, metadataLockName('a_metadata_database_with_a_rather_long_name', 'backup', '0ddba110-0000-4000-8000-000000000002'));
});

test('withLock holds the lock on its own connection: the locked code can use every pooled connection at once', async () => {
  const name = world.metadata.lockName('full', world.replicaInstanceId);
  assert.ok(name.includes(world.database), name);
  const poolSize = 4; // MetadataStore's connectionLimit
  const holders = await world.metadata.withLock(name, () =>
    Promise.all(
      Array.from({ length: poolSize }, async () => {
        const [rows] = await world.metadata.pool.query<RowDataPacket[]>('SELECT SLEEP(0.2) AS s, IS_USED_LOCK(?) AS holder, CONNECTION_ID() AS me', [name]);
        return rows[0]!;
      }),
    ),
  );
  for (const r of holders) {
    assert.ok(r.holder !== null, 'the lock is held while the locked code runs');
    assert.notEqual(Number(r.holder), Number(r.me), 'not by a connection of the pool');
  }
  const [after] = await world.metadata.pool.query<RowDataPacket[]>('SELECT IS_USED_LOCK(?) AS holder', [name]);
  assert.equal(after[0]!.holder, null, 'released afterwards');
});

test('a lock whose holder died is free at once; a busy one names its holder', async () => {
  const other = await MetadataStore.connect(world.config.metadata);
  try {
    const name = other.lockName('expire', world.replicaInstanceId);
    const held = (await other.acquireLock(name, { waitSeconds: 0 }))!;
    let seen: unknown;
    const busy = await world.metadata.acquireLock(name, { waitSeconds: 0, onBusy: (h) => (seen = h) });
    assert.equal(busy, undefined);
    assert.match(JSON.stringify(seen), /"connectionId":\d+,"clientAddress":"[^"]+"/);
    // The holder's connection is killed, as a kill -9 of its process would end it.
    const [rows] = await world.metadata.pool.query<RowDataPacket[]>('SELECT IS_USED_LOCK(?) AS id', [name]);
    const env = world.config.metadata;
    const killer = await mysql.createConnection({ host: env.host, port: env.port, user: env.user, password: env.password });
    await killer.query('KILL ?', [Number(rows[0]!.id)]);
    await killer.end();
    const mine = await world.metadata.acquireLock(name, { waitSeconds: 10 });
    assert.ok(mine, 'taken once its holder is gone');
    await mine.release();
    await held.release();
  } finally {
    await other.close();
  }
  await assertBackupInvariants(world);
});
