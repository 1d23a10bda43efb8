// Local file-system safety on the DB host, where the worker runs as root next to production: deletes go through
// here, and names from outside become local file names only through safe-name.ts. Some paths removed are derived
// from data (a metadata row's backup_path and backup_name): a path is resolved (`..` folded, symbolic links of its
// parent directories followed, so a link cannot redirect it) and removed only when it lies inside one of the roots
// the caller may delete in. The resolved path is what is removed, so the check and the delete agree.
// May import: nothing from src.
import { realpath, rm } from 'node:fs/promises';
import path from 'node:path';

/** The directories a caller may delete in, by the name a message gives them: `{ backup_path: '/data/backup' }`. */
export type DeletionRoots = Readonly<Record<string, string>>;

export interface ContainedOptions {
  within: DeletionRoots;
  /** A root itself may be removed too (a directory the caller created for itself); never by default. */
  allowRoot?: boolean;
}

/** A delete refused because its path is not inside the allowed roots. */
export class OutsideRootError extends Error {
  override readonly name = 'OutsideRootError';
}

/** The real path of `dir`, or of its deepest existing ancestor with the rest appended. */
async function realExisting(dir: string): Promise<string> {
  try {
    return await realpath(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
    const up = path.dirname(dir);
    if (up === dir) return dir;
    return path.join(await realExisting(up), path.basename(dir));
  }
}

/** Where `p` really is: absolute, `..` folded, its parent directories' symbolic links resolved (not its own). */
export async function resolvedLocation(p: string): Promise<string> {
  const abs = path.resolve(p);
  const parent = path.dirname(abs);
  if (parent === abs) return abs;
  return path.join(await realExisting(parent), path.basename(abs));
}

function isInside(target: string, root: string): boolean {
  return target.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

function describe(p: string, resolved: string): string {
  return path.resolve(p) === resolved ? resolved : `${p} (${resolved})`;
}

function describeRoots(roots: Array<{ label: string; dir: string }>): string {
  return roots.map((r) => `${r.label} ${r.dir}`).join(' or ');
}

/**
 * The resolved path of `p` when it may be deleted: strictly inside one of `within` (or one of them itself with
 * `allowRoot`). Throws OutsideRootError otherwise, naming the path and the roots.
 */
export async function checkDeletable(p: string, opts: ContainedOptions): Promise<string> {
  const target = await resolvedLocation(p);
  const roots = await Promise.all(Object.entries(opts.within).map(async ([label, dir]) => ({ label, dir: await realExisting(path.resolve(dir)) })));
  const what = describe(p, target);
  if (!roots.length) throw new OutsideRootError(`refusing to delete ${what}: no directory is allowed for deletes`);
  for (const root of roots) {
    if (root.dir === path.parse(root.dir).root) throw new OutsideRootError(`refusing to delete ${what}: ${root.label} is the file-system root ${root.dir}`);
    if (target === root.dir) {
      if (opts.allowRoot) return target;
      throw new OutsideRootError(`refusing to delete ${what}: it is ${root.label} itself`);
    }
    if (isInside(target, root.dir)) return target;
  }
  throw new OutsideRootError(`refusing to delete ${what}: outside ${describeRoots(roots)}`);
}

/**
 * rm -rf of `p`, once checkDeletable allows it. A symbolic link at `p` is removed, not what it points to. A file
 * created inside while the tree is removed (a write still in flight) fails a removal with ENOTEMPTY: it is retried.
 */
export async function removeTree(p: string, opts: ContainedOptions): Promise<void> {
  await rm(await checkDeletable(p, opts), { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
}

/** rm -f of the file `p`, once checkDeletable allows it. */
export async function removeFile(p: string, opts: ContainedOptions): Promise<void> {
  await rm(await checkDeletable(p, opts), { force: true });
}
