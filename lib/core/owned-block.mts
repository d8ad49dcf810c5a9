// Phoenix's own block in a file that other tools and the operator share
// (/etc/exports, smb.conf, /etc/hosts, /etc/sudoers, /etc/modules,
// /etc/default/grub, apparmor tunables, /etc/subuid and /etc/subgid).
//
// The block sits between a BEGIN and an END line the caller chooses, in the
// file's comment syntax. Phoenix rewrites only what lies between them, the
// marker lines included; every other byte stays as it was: other blocks,
// blank lines, trailing spaces, CRLF line ends, bytes that are not UTF-8, a
// missing final newline. Markers that do not pair up (a BEGIN without END,
// an END without BEGIN, two blocks, one inside another) are refused rather
// than guessed at, because a guess could swallow the operator's lines.
//
// The first time Phoenix changes a file that holds no block of its own yet,
// the file as it was is kept beside it as `<file>.phoenix-orig`, once: later
// runs never replace it, so it stays the operator's original and no copies
// pile up.

import fs from 'node:fs';
import path from 'node:path';
import { PhoenixError } from './errors.mts';
import { isDryRun } from './context.mts';
import { debug, info } from './log.mts';
import { readIfExists, writeFileAtomic, uniqueSuffix, type WriteOutcome } from './fs.mts';

export const ORIGINAL_SUFFIX = '.phoenix-orig';

export interface BlockMarkers {
  /** The whole BEGIN line, comment character included, e.g. `# BEGIN phoenix: NFS exports`. */
  begin: string;
  /** The whole END line, e.g. `# END phoenix: NFS exports`. */
  end: string;
}

export interface OwnedBlockSpec extends BlockMarkers {
  /** The lines between the markers, without line ends. */
  lines?: readonly string[];
  /** With no lines, take the block out (markers too) instead of leaving an empty one. */
  removeWhenEmpty?: boolean;
}

export interface EnsureOwnedBlockSpec extends OwnedBlockSpec {
  /** Create the file with this mode when it is missing; without it a missing file is an error. */
  createMode?: number;
}

/** A file whose markers do not pair up, or a block that could not be written as asked. */
export class OwnedBlockError extends PhoenixError {
  readonly file: string;
  /** 1-based line of the offending marker, when there is one. */
  readonly line: number | undefined;

  constructor(file: string, line: number | undefined, message: string, hint?: string) {
    super(`${file}${line === undefined ? '' : `, line ${line}`}: ${message}`, hint === undefined ? {} : { hint });
    this.file = file;
    this.line = line;
  }
}

/** Where the block is: the text before it, the block itself, the text after it. */
export interface LocatedBlock {
  before: string;
  block: string;
  after: string;
  /** The lines between the markers. */
  lines: string[];
  /** 1-based lines of the two markers. */
  beginLine: number;
  endLine: number;
  /** Line end of the BEGIN line, and of the END line ('' when the file ends there). */
  eol: string;
  endEol: string;
}

interface Line {
  text: string;
  eol: '' | '\n' | '\r\n';
  start: number;
}

function splitLines(text: string): Line[] {
  const lines: Line[] = [];
  let start = 0;
  while (start < text.length) {
    const newline = text.indexOf('\n', start);
    if (newline === -1) {
      lines.push({ text: text.slice(start), eol: '', start });
      break;
    }
    const crlf = newline > start && text[newline - 1] === '\r';
    lines.push({ text: text.slice(start, crlf ? newline - 1 : newline), eol: crlf ? '\r\n' : '\n', start });
    start = newline + 1;
  }
  return lines;
}

/** A marker line still counts when an editor left trailing blanks on it. */
function isMarker(line: string, marker: string): boolean {
  return line.replace(/[ \t]+$/, '') === marker;
}

const FIX_MARKERS = 'fix or remove the markers by hand; the file was left as it was';

function checkMarkers(markers: BlockMarkers): void {
  for (const [name, marker] of [['BEGIN', markers.begin], ['END', markers.end]] as const) {
    // Printable ASCII only: the marker is then the same string however the file is decoded.
    if (!/^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(marker)) {
      throw new PhoenixError(`owned block: the ${name} marker must be one line of printable ASCII without surrounding blanks, not ${JSON.stringify(marker)}`);
    }
  }
  if (markers.begin === markers.end) throw new PhoenixError(`owned block: BEGIN and END markers are the same (${markers.begin})`);
}

/**
 * Find Phoenix's block in a text; undefined when there is none. Throws
 * OwnedBlockError, naming the file and line, when the markers do not pair up.
 */
export function locateOwnedBlock(text: string, markers: BlockMarkers, file = 'file'): LocatedBlock | undefined {
  checkMarkers(markers);
  const lines = splitLines(text);
  let open: number | undefined;
  let found: { begin: number; end: number } | undefined;
  for (const [index, line] of lines.entries()) {
    if (isMarker(line.text, markers.begin)) {
      if (open !== undefined) {
        throw new OwnedBlockError(file, index + 1, `'${markers.begin}' inside the block opened at line ${open + 1} (nested blocks)`, FIX_MARKERS);
      }
      if (found !== undefined) {
        throw new OwnedBlockError(file, index + 1, `a second block '${markers.begin}'; the first is at lines ${found.begin + 1}-${found.end + 1}`, FIX_MARKERS);
      }
      open = index;
    } else if (isMarker(line.text, markers.end)) {
      if (open === undefined) throw new OwnedBlockError(file, index + 1, `'${markers.end}' without a '${markers.begin}' before it`, FIX_MARKERS);
      found = { begin: open, end: index };
      open = undefined;
    }
  }
  if (open !== undefined) throw new OwnedBlockError(file, open + 1, `'${markers.begin}' without a '${markers.end}' after it`, FIX_MARKERS);
  if (found === undefined) return undefined;
  const first = lines[found.begin] as Line;
  const last = lines[found.end] as Line;
  const blockEnd = last.start + last.text.length + last.eol.length;
  return {
    before: text.slice(0, first.start),
    block: text.slice(first.start, blockEnd),
    after: text.slice(blockEnd),
    lines: lines.slice(found.begin + 1, found.end).map((line) => line.text),
    beginLine: found.begin + 1,
    endLine: found.end + 1,
    eol: first.eol,
    endEol: last.eol,
  };
}

/**
 * The new text of a file: the block replaced where it is, appended when
 * absent (after a line end only if the text lacks one), or removed when it
 * has no lines and the caller asks for that. Nothing outside the block moves.
 */
export function replaceOwnedBlock(text: string, spec: OwnedBlockSpec, file = 'file'): string {
  const located = locateOwnedBlock(text, spec, file);
  const body = spec.lines ?? [];
  body.forEach((line, index) => {
    if (/[\r\n]/.test(line)) throw new OwnedBlockError(file, undefined, `line ${index + 1} of the block to write holds a line break`);
    if (isMarker(line, spec.begin) || isMarker(line, spec.end)) {
      throw new OwnedBlockError(file, undefined, `line ${index + 1} of the block to write is one of its markers`);
    }
  });
  const remove = body.length === 0 && spec.removeWhenEmpty === true;
  const render = (eol: string, lastEol: string) => [spec.begin, ...body, spec.end].join(eol) + lastEol;
  if (located !== undefined) {
    return remove ? located.before + located.after : located.before + render(located.eol, located.endEol) + located.after;
  }
  if (remove) return text;
  // A new block follows the file's own line ends.
  const firstNewline = text.indexOf('\n');
  const eol = firstNewline > 0 && text[firstNewline - 1] === '\r' ? '\r\n' : '\n';
  const separator = text === '' || text.endsWith('\n') ? '' : eol;
  return text + separator + render(eol, eol);
}

/**
 * Bring a file's block to the spec: read it, compute the new text, keep the
 * original once, and write atomically with the file's mode and owner (dry-run
 * aware, through writeFileAtomic). A symbolic link is followed, so the file it
 * points to is edited and the link stays.
 */
export function ensureOwnedBlock(file: string, spec: EnsureOwnedBlockSpec): WriteOutcome {
  const target = followLink(file);
  // Bytes as latin1: one character per byte, so bytes that are not UTF-8 survive the round trip.
  const asBytes: OwnedBlockSpec = { ...spec, lines: (spec.lines ?? []).map((line) => Buffer.from(line, 'utf8').toString('latin1')) };
  const current = readIfExists(target);
  if (current === undefined) {
    const text = replaceOwnedBlock('', asBytes, file);
    if (text === '') return 'unchanged';
    if (spec.createMode === undefined) throw new OwnedBlockError(file, undefined, 'does not exist, and this block is not allowed to create it');
    return writeFileAtomic(target, Buffer.from(text, 'latin1'), { mode: spec.createMode });
  }
  const old = current.toString('latin1');
  const next = replaceOwnedBlock(old, asBytes, file);
  if (next === old) {
    debug(`unchanged: Phoenix's block in ${file}`);
    return 'unchanged';
  }
  const stat = fs.statSync(target);
  const keep = { mode: stat.mode & 0o7777, uid: stat.uid, gid: stat.gid };
  if (locateOwnedBlock(old, spec, file) === undefined) keepOriginal(target, current, keep);
  return writeFileAtomic(target, Buffer.from(next, 'latin1'), keep);
}

/** Copy the file as it is to `<file>.phoenix-orig`, unless that copy exists; atomic, never replaces one. */
function keepOriginal(target: string, content: Buffer, keep: { mode: number; uid: number; gid: number }): void {
  const copy = `${target}${ORIGINAL_SUFFIX}`;
  if (fs.lstatSync(copy, { throwIfNoEntry: false }) !== undefined) return;
  if (isDryRun()) {
    info(`DRY-RUN: would keep the original of ${target} as ${copy}`);
    return;
  }
  const temp = path.join(path.dirname(target), `.${path.basename(copy)}.${uniqueSuffix()}.tmp`);
  const fd = fs.openSync(temp, 'wx', keep.mode);
  try {
    try {
      fs.writeSync(fd, content);
      fs.fchmodSync(fd, keep.mode);
      fs.fchownSync(fd, keep.uid, keep.gid);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    // link() fails when the name exists, where rename() would replace it.
    fs.linkSync(temp, copy);
    info(`Kept the original of ${target} as ${copy}`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    fs.rmSync(temp, { force: true });
  }
}

function followLink(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return file;
    throw err;
  }
}
