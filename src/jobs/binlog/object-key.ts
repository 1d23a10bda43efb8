// Where a binlog goes in the bucket, never on top of another object (the names: binlogObjectNameCandidates).
import { objectKeyClaimed } from '../../metadata/binlog-queries.ts';
import type { MetadataStore } from '../../metadata/index.ts';
import { binlogObjectNameCandidates } from '../../naming.ts';
import { compareStoredObject, type ObjectStore } from '../../storage/index.ts';

export interface ObjectKeyChoice {
  key: string;
  /** The object is there already: this row's own earlier upload, with exactly the bytes it would upload now. */
  alreadyStored: boolean;
}

export interface KeyRequest {
  instanceId: number;
  backupUuid: string;
  file: string;
  startSeconds: number;
  extension: string;
  /** Size and sha256 of the bytes that would be stored. */
  bytes: number;
  sha256: string;
}

/**
 * The first candidate that no other row claims and that is empty in storage, or holds this row's own identical
 * earlier upload. The per-instance binlog lock keeps two runs from choosing at the same time.
 */
export async function chooseBinlogObjectKey(store: ObjectStore, metadata: MetadataStore, req: KeyRequest): Promise<ObjectKeyChoice> {
  let tried = 0;
  for (const key of binlogObjectNameCandidates(req.instanceId, req.file, req.startSeconds, req.extension)) {
    tried++;
    if (await objectKeyClaimed(metadata, store.bucket, req.instanceId, key, req.backupUuid)) continue;
    const match = await compareStoredObject(store, key, { bytes: req.bytes, sha256: req.sha256, owner: req.backupUuid });
    if (match === 'absent') return { key, alreadyStored: false };
    if (match === 'identical') return { key, alreadyStored: true };
  }
  throw new Error(`no free object name for ${req.file} in ${store.location}: ${tried} names are taken`);
}
