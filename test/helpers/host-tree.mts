// "Nothing changed" as tests check it: every file below a directory with a
// digest of its bytes and mode (and, when asked, its mtime), symlinks by
// target, so two snapshots compare equal only if no byte, mode or link moved.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface TreeOptions {
  /** Leave out a path (relative to the root, '/'-separated); a directory left out is not entered. */
  skip?: (rel: string) => boolean;
  /** Also compare modification times (a rewrite with the same bytes counts as a change). */
  mtime?: boolean;
  /** Replace a file's digest with a view of it (e.g. a state file without its caches). */
  view?: (rel: string, file: string) => string | undefined;
}

export function treeSnapshot(root: string, options: TreeOptions = {}): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      const rel = path.relative(root, full).split(path.sep).join('/');
      if (options.skip?.(rel)) continue;
      if (entry.isDirectory()) walk(full);
      else if (entry.isSymbolicLink()) out.set(rel, `-> ${fs.readlinkSync(full)}`);
      else if (entry.isFile()) {
        const viewed = options.view?.(rel, full);
        if (viewed !== undefined) {
          out.set(rel, viewed);
          continue;
        }
        const stat = fs.statSync(full);
        const digest = crypto.createHash('sha256').update(fs.readFileSync(full)).digest('hex');
        out.set(rel, `${(stat.mode & 0o7777).toString(8)} ${digest}${options.mtime ? ` @${stat.mtimeMs}` : ''}`);
      }
    }
  };
  walk(root);
  return out;
}

/** The paths that differ between two snapshots (added, removed or changed), sorted. */
export function treeDifferences(before: Map<string, string>, after: Map<string, string>): string[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys].filter((k) => before.get(k) !== after.get(k)).sort();
}
