// File writes that never leave a half-written file: the content goes to a
// temporary file in the same directory, gets its mode (and owner) there, is
// flushed, and only then is renamed over the target. A reader sees either the
// old file or the new one; a private key is never briefly world-readable.
// Writes honour the run context's dry-run (context.mts) like commands do, and
// report whether anything changed.

import fs from 'node:fs';
import path from 'node:path';
import { isDryRun } from './context.mts';
import { info, debug } from './log.mts';
import { looksLikeText, unifiedDiff } from './text-diff.mts';

export type WriteOutcome = 'created' | 'changed' | 'unchanged';

export interface WriteOptions {
  /** File mode, e.g. 0o600 for keys; default 0o644. */
  mode?: number;
  /** Mode for directories created on the way; default 0o755 (0o700 for secrets). */
  dirMode?: number;
  uid?: number;
  gid?: number;
  /** The content is a secret: a dry-run says that it would change, never how. */
  secret?: boolean;
}

export function writeFileAtomic(target: string, content: string | Buffer, options: WriteOptions = {}): WriteOutcome {
  const mode = options.mode ?? 0o644;
  const data = typeof content === 'string' ? Buffer.from(content) : content;
  const current = readIfExists(target);
  const currentMode = current === undefined ? undefined : fs.statSync(target).mode & 0o7777;
  const sameOwner = current === undefined || ownerMatches(target, options);
  if (current !== undefined && current.equals(data) && currentMode === mode && sameOwner) {
    debug(`unchanged: ${target}`);
    return 'unchanged';
  }
  const outcome: WriteOutcome = current === undefined ? 'created' : 'changed';
  if (isDryRun()) {
    info(`DRY-RUN: would write ${target} (${data.length} bytes, mode ${mode.toString(8)})`);
    // A file only its owner may read is treated as a secret.
    showDiff(target, current, data, options.secret === true || (mode & 0o044) === 0);
    return outcome;
  }

  const dir = path.dirname(target);
  fs.mkdirSync(dir, { recursive: true, mode: options.dirMode ?? 0o755 });
  const temp = path.join(dir, `.${path.basename(target)}.${uniqueSuffix()}.tmp`);
  // The temp file is created with the final mode, so its content is never
  // readable by anyone the final file would not allow.
  const fd = fs.openSync(temp, 'wx', mode);
  try {
    fs.writeSync(fd, data);
    fs.fchmodSync(fd, mode); // umask may have narrowed the mode given to open
    if (options.uid !== undefined || options.gid !== undefined) {
      fs.fchownSync(fd, options.uid ?? -1, options.gid ?? -1);
    }
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(temp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(temp, target);
  } catch (err) {
    fs.rmSync(temp, { force: true });
    throw err;
  }
  info(`${outcome === 'created' ? 'Created' : 'Updated'} ${target}`);
  return outcome;
}

/** The dry-run's view of a write: the diff of a text file (not of keys, secrets or binary data). */
function showDiff(target: string, current: Buffer | undefined, data: Buffer, secret: boolean): void {
  const sensitiveName = /\.(key|pem|p12|pfx)$|secret|password|shadow/i.test(target);
  if (secret || sensitiveName || !looksLikeText(data) || (current !== undefined && !looksLikeText(current))) return;
  const diff = unifiedDiff(current?.toString('utf8') ?? '', data.toString('utf8'), target.startsWith('/') ? target : `/${target}`);
  if (diff) info(diff.trimEnd());
}

/** Create a directory (and parents) with a mode; fix the mode if it exists. */
export function ensureDir(dir: string, mode = 0o755): WriteOutcome {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(dir);
  } catch {
    stat = undefined;
  }
  if (stat && (stat.mode & 0o7777) === mode) return 'unchanged';
  if (isDryRun()) {
    info(`DRY-RUN: would ${stat ? 'chmod' : 'create'} directory ${dir} (mode ${mode.toString(8)})`);
    return stat ? 'changed' : 'created';
  }
  fs.mkdirSync(dir, { recursive: true, mode });
  fs.chmodSync(dir, mode);
  return stat ? 'changed' : 'created';
}

/** A file's bytes, or undefined when it does not exist (any other failure throws). */
export function readIfExists(file: string): Buffer | undefined {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function ownerMatches(file: string, options: WriteOptions): boolean {
  if (options.uid === undefined && options.gid === undefined) return true;
  const stat = fs.statSync(file);
  return (options.uid === undefined || stat.uid === options.uid) && (options.gid === undefined || stat.gid === options.gid);
}

let counter = 0;
/** Unique within the host: pid, a per-process counter and some randomness (node:crypto costs ~10 ms to load). */
export function uniqueSuffix(): string {
  counter += 1;
  return `${process.pid}.${counter}.${Math.random().toString(36).slice(2, 10)}`;
}

/**
 * Remove a file, dry-run aware. 'absent' when there was nothing to remove,
 * so a second run can say "unchanged".
 */
export function removeFile(target: string): 'removed' | 'absent' {
  if (!fs.existsSync(target)) return 'absent';
  if (isDryRun()) {
    info(`DRY-RUN: would remove ${target}`);
    return 'removed';
  }
  fs.rmSync(target, { force: true });
  info(`Removed ${target}`);
  return 'removed';
}
