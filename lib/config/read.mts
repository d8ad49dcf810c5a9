// Reading one manifest file: only a regular file of bounded size, valid
// UTF-8 without a byte order mark, strict JSON without repeated keys or deep
// nesting. Every refusal names the file and, where it can, the JSON pointer.

import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../core/errors.mts';
import type { ManifestKind } from './types.mts';
import { MANIFEST_ENV, MANIFEST_FILES, MAX_MANIFEST_BYTES, PROJECT_ETC } from './files.mts';
import { lineColumn, scanJson } from './json-scan.mts';
import { issueError, ManifestError } from './schema-check.mts';


/**
 * The bytes of a manifest, refusing what is not a regular file before it is
 * opened: a FIFO would block the read forever, a device or /proc file has no
 * end. The open itself is non-blocking, so a file swapped for a FIFO in
 * between cannot hang the run either.
 */
export function readManifestBytes(file: string, kind: ManifestKind): Buffer {
  const hint = `set ${MANIFEST_ENV[kind]} or PHOENIX_BASE_DIR; an example is ${path.join(PROJECT_ETC, MANIFEST_FILES[kind])}`;
  const failure = (err: unknown): ConfigError => {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return new ConfigError(file, '', 'file not found', hint);
    if (code === 'ENOTDIR') return new ConfigError(file, '', 'file not found (a directory on its path is a file)', hint);
    if (code === 'EISDIR') return new ConfigError(file, '', 'is a directory, not a JSON file', hint);
    if (code === 'ELOOP') return new ConfigError(file, '', 'symbolic link loop; the path never reaches a file');
    if (code === 'EACCES' || code === 'EPERM') return new ConfigError(file, '', 'permission denied');
    return new ConfigError(file, '', `cannot read: ${code ?? String(err)}`);
  };
  const refuseType = (stat: fs.Stats): void => {
    if (stat.isFile()) {
      if (stat.size > MAX_MANIFEST_BYTES) throw new ConfigError(file, '', `is ${stat.size} bytes; a manifest may have at most ${MAX_MANIFEST_BYTES} (16 MiB)`);
      return;
    }
    if (stat.isDirectory()) throw new ConfigError(file, '', 'is a directory, not a JSON file', hint);
    const what = stat.isFIFO() ? 'a named pipe (FIFO)' : stat.isSocket() ? 'a socket' : stat.isCharacterDevice() || stat.isBlockDevice() ? 'a device' : 'not a regular file';
    throw new ConfigError(file, '', `is ${what}; a manifest must be a regular file`);
  };
  try {
    refuseType(fs.statSync(file));
    // O_NONBLOCK: should the file have become a FIFO since the check, the
    // read ends at once (EOF or EAGAIN) instead of waiting for a writer.
    // Node takes numeric open flags here too; its typings only list the string forms.
    const bytes = fs.readFileSync(file, { flag: (fs.constants.O_RDONLY | fs.constants.O_NONBLOCK) as unknown as string });
    if (bytes.length > MAX_MANIFEST_BYTES) throw new ConfigError(file, '', `is larger than ${MAX_MANIFEST_BYTES} bytes (16 MiB), the most a manifest may have`);
    return bytes;
  } catch (err) {
    throw err instanceof ConfigError ? err : failure(err);
  }
}

export function parseFile(file: string, kind: ManifestKind): unknown {
  const bytes = readManifestBytes(file, kind);
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    // jq refuses it too, so a bash toolkit never ran with such a file.
    throw issueError(file, '', 'starts with a UTF-8 byte order mark (BOM); save the file without it');
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const offset = invalidUtf8Offset(bytes);
    const before = bytes.subarray(0, offset).toString('utf8');
    const { line, column } = lineColumn(before, before.length);
    throw new ManifestError([{ file, pointer: '', message: `not valid UTF-8 at line ${line}, column ${column} (byte ${offset})` }], { line, column });
  }
  if (text.trim() === '') throw issueError(file, '', 'file is empty; expected a JSON document');
  // The scanner runs first: it bounds the nesting depth before anything
  // recursive (JSON.parse, the schema validators) sees the document, and it
  // reports positions and pointers where JSON.parse would quote the text,
  // which may be a secret.
  const scan = scanJson(text);
  if (scan.error) {
    const { line, column } = lineColumn(text, scan.error.offset);
    if (scan.error.tooDeep) {
      throw new ManifestError([{ file, pointer: scan.error.pointer, message: `${scan.error.message} (line ${line}, column ${column}); no manifest needs that` }], { line, column });
    }
    // A syntax error belongs to no value, so the pointer is only a hint of where it is.
    const inside = scan.error.pointer === '' ? '' : ` (in ${scan.error.pointer})`;
    throw new ManifestError([{ file, pointer: '', message: `invalid JSON at line ${line}, column ${column}: ${scan.error.message}${inside}` }], {
      line,
      column,
    });
  }
  // jq and JSON.parse both keep the last of two equal keys, so a copied CT
  // block whose id was not changed silently replaces the original.
  if (scan.duplicates.length > 0) {
    throw new ManifestError(
      scan.duplicates.map((d) => ({
        file,
        pointer: d.pointer,
        message: `duplicate key ${JSON.stringify(d.key)} at line ${lineColumn(text, d.offset).line} (first at line ${lineColumn(text, d.firstOffset).line}; only the last would count)`,
      })),
    );
  }
  try {
    return JSON.parse(text);
  } catch {
    throw issueError(file, '', 'not valid JSON');
  }
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence. */
function invalidUtf8Offset(bytes: Uint8Array): number {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    const width = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (width === 0) return i;
    try {
      decoder.decode(bytes.subarray(i, i + width));
    } catch {
      return i;
    }
    i += width;
  }
  return i;
}
