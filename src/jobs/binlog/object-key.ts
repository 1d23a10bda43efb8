// Where a binlog goes in the bucket, never on top of another object.
//
// The seed's name `log_<id>_<file>[.gz|.zst]` when it is free. A binlog of another series (another server, or before a
// RESET BINARY LOGS) may hold that name already: then `log_<id>_<file>.<start>[.gz]`, `<start>` the epoch seconds of
// the binlog's first event, and if even that is taken (two servers that opened a binlog of the same name in the same
// second) `log_<id>_<file>.<start * 1000 + n>[.gz]`. Both suffixes are one `.` and at least 9 digits, which
// `--from-bucket` (src/restore/bucket.ts) strips to get the file name back.
import { objectKeyClaimed } from '../../metadata/binlog-queries.ts';
import type { MetadataStore } from '../../metadata/index.ts';
import { binlogObjectName } from '../../naming.ts';
import { compareStoredObject, type ObjectStore } from '../../storage/index.ts';

const MAX_SUFFIXES = 99;

/** The names a binlog may take, in order of preference. */
export function* binlogObjectKeyCandidates(instanceId: number, file: string, startSeconds: number, extension: string): Generator<string> {
  yield binlogObjectName(instanceId, file, extension);
  yield binlogObjectName(instanceId, `${file}.${startSeconds}`, extension);
  for (let n = 1; n <= MAX_SUFFIXES; n++) yield binlogObjectName(instanceId, `${file}.${startSeconds * 1000 + n}`, extension);
}

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
  for (const key of binlogObjectKeyCandidates(req.instanceId, req.file, req.startSeconds, req.extension)) {
    if (await objectKeyClaimed(metadata, store.bucket, req.instanceId, key, req.backupUuid)) continue;
    const match = await compareStoredObject(store, key, { bytes: req.bytes, sha256: req.sha256, owner: req.backupUuid });
    if (match === 'absent') return { key, alreadyStored: false };
    if (match === 'identical') return { key, alreadyStored: true };
  }
  throw new Error(`no free object name for ${req.file} in ${store.location}: ${MAX_SUFFIXES + 2} names are taken`);
}
