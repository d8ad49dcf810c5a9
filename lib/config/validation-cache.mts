// Which manifests have already passed their schema, so a script does not
// load and run the schema validators (the larger part of a short script's
// start-up) for a manifest that has not changed since it last passed.
//
// An entry is the sha256 of the manifest's kind, of the validator it passed
// (its size and modification time: `make build` writes a new one when a
// schema changes) and of the parsed document. Only schema checks are
// skipped; every other check on a manifest runs each time. Entries are
// written only by a run that ends with exit status 0 and is no dry run, so a
// refused or failed run changes nothing. The cache file must belong to the
// user running Phoenix and be writable by nobody else; otherwise it is
// ignored, since whoever can write it could mark any manifest as checked.
//
// PHOENIX_CACHE_DIR, default /var/cache/phoenix (on the simulated host:
// <PHOENIX_SIM_STATE>/cache, outside its host tree).

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { isDryRun } from '../core/context.mts';

const FILE_NAME = 'validated-manifests.json';
/** Enough for every manifest of several base directories; the oldest entries go first. */
const MAX_ENTRIES = 64;

interface CacheState {
  file: string | undefined;
  known: Set<string>;
  added: string[];
}

let state: CacheState | undefined;

function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PHOENIX_CACHE_DIR?.trim()) return path.resolve(env.PHOENIX_CACHE_DIR);
  if (env.PHOENIX_SIM_STATE?.trim()) return path.join(env.PHOENIX_SIM_STATE, 'cache');
  return '/var/cache/phoenix';
}

/** Owned by this user, writable by no one else: anything else is not trusted. */
function trusted(file: string): boolean {
  try {
    const st = fs.statSync(file);
    const uid = process.getuid?.() ?? st.uid;
    return st.uid === uid && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

function load(): CacheState {
  if (state) return state;
  const file = path.join(cacheDir(), FILE_NAME);
  let known: string[] = [];
  if (trusted(path.dirname(file)) && trusted(file)) {
    try {
      const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
      if (Array.isArray(parsed)) known = parsed.filter((d): d is string => typeof d === 'string' && /^[0-9a-f]{64}$/.test(d));
    } catch {
      known = [];
    }
  }
  state = { file, known: new Set(known), added: [] };
  process.once('exit', (code) => save(code));
  return state;
}

function save(code: number): void {
  const s = state;
  if (!s?.file || s.added.length === 0 || code !== 0 || isDryRun()) return;
  try {
    const dir = path.dirname(s.file);
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    if (!trusted(dir)) return;
    const entries = [...s.known].filter((d) => !s.added.includes(d)).concat(s.added).slice(-MAX_ENTRIES);
    const temp = `${s.file}.${process.pid}.tmp`;
    fs.writeFileSync(temp, `${JSON.stringify(entries)}\n`, { mode: 0o644 });
    fs.renameSync(temp, s.file);
  } catch {
    // A cache: a read-only or full disk only costs the next run its speed.
  }
}

/** The entry for a document that passed (or is to be checked against) `validatorFile`. */
export function validationKey(kind: string, validatorFile: string, doc: unknown): string | undefined {
  let stamp: string;
  try {
    const st = fs.statSync(validatorFile);
    stamp = `${st.size}:${st.mtimeMs}`;
  } catch {
    return undefined;
  }
  return crypto.createHash('sha256').update(`${kind}\0${stamp}\0${JSON.stringify(doc)}`).digest('hex');
}

export function alreadyValidated(key: string | undefined): boolean {
  return key !== undefined && load().known.has(key);
}

export function rememberValidated(key: string | undefined): void {
  if (key === undefined) return;
  const s = load();
  if (!s.known.has(key)) s.added.push(key);
}
