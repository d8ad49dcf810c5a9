// Running another Phoenix script as one step of sync, and telling from the
// outside whether it changed anything: the commands it recorded (every port
// records its commands through the runner when PHOENIX_RECORD is set, and
// marks each as mutating or not) and the digests of the files it is known
// to write, taken before and after. Only a bash original, which records
// nothing, is judged by its output as well.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { resolveScript, runScript } from '../core/bridge.mts';
import { configPathsEnv, type ConfigPaths } from '../config/load.mts';
import { childEnv, type PhoenixOptions } from '../core/env.mts';
import { PhoenixError } from '../core/errors.mts';
import { formatCommand, type RecordedCommand } from '../core/runner.mts';
import { isDryRun, runContext } from '../core/context.mts';
import { redact } from '../core/redact.mts';

export interface ChildRun {
  /** `managers/swarm-manager.sh init`, as the operator would type it. */
  command: string;
  kind: 'port' | 'legacy' | 'missing';
  code: number;
  stdout: string;
  stderr: string;
  /** Mutating commands it ran (or, in a dry-run, planned). */
  mutations: RecordedCommand[];
  /** Watched files whose digest differs after the run. */
  filesChanged: string[];
  /** Why it could not be run (kind 'missing'). */
  problem?: string;
}

export interface ChildContext {
  options: PhoenixOptions;
  paths: ConfigPaths;
  lockToken: string | undefined;
  scratch: string;
}

let sequence = 0;

export async function runChild(ctx: ChildContext, upstreamName: string, args: readonly string[], watch: readonly string[] = []): Promise<ChildRun> {
  const command = formatCommand(upstreamName, args);
  let kind: 'port' | 'legacy';
  try {
    kind = resolveScript(upstreamName, ctx.options).kind;
  } catch (err) {
    if (!(err instanceof PhoenixError)) throw err;
    return { command, kind: 'missing', code: err.exitCode, stdout: '', stderr: '', mutations: [], filesChanged: [], problem: err.message };
  }
  const record = path.join(ctx.scratch, `child-${++sequence}.jsonl`);
  const before = digests(watch);
  const env = childEnv(ctx.options, {
    ...configPathsEnv(ctx.paths),
    PHOENIX_RECORD: record,
    PHOENIX_LOCK_TOKEN: ctx.lockToken,
  });
  const result = await runScript(upstreamName, args, { legacyDir: ctx.options.legacyDir, useLegacy: ctx.options.useLegacy, env, capture: true });
  const recorded = readRecord(record);
  // The child's commands belong to this run's plan too.
  const { recordFile } = runContext();
  if (recordFile && recorded.lines.length > 0) {
    try {
      // Masked again with this process's secrets too: the child knew only its own.
      fs.appendFileSync(recordFile, recorded.lines.map((l) => `${redact(l)}\n`).join(''));
    } catch {
      // An audit aid only.
    }
  }
  fs.rmSync(record, { force: true });
  const after = digests(watch);
  const filesChanged = watch.filter((file) => before.get(file) !== after.get(file));
  const mutations = recorded.entries.filter((c) => c.mutating && (isDryRun() ? true : !c.skipped));
  return { command, kind, code: result.code, stdout: result.stdout, stderr: result.stderr, mutations, filesChanged };
}

function readRecord(file: string): { lines: string[]; entries: RecordedCommand[] } {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return { lines: [], entries: [] };
  }
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const entries: RecordedCommand[] = [];
  for (const line of lines) {
    try {
      entries.push(JSON.parse(line) as RecordedCommand);
    } catch {
      // A line cut short by a killed child: not a command we can judge.
    }
  }
  return { lines, entries };
}

/** SHA-256 of each file, or of a directory's files (names, modes, contents); absent = ''. */
export function digests(files: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const file of files) out.set(file, digestOf(file));
  return out;
}

export function digestOf(file: string): string {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    return '';
  }
  const hash = crypto.createHash('sha256');
  if (stat.isDirectory()) {
    const walk = (dir: string) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
        const full = path.join(dir, entry.name);
        // Temporary files of an atomic write in progress are not content.
        if (entry.name.endsWith('.tmp')) continue;
        if (entry.isDirectory()) walk(full);
        else if (entry.isFile()) hash.update(`${path.relative(file, full)}\0${(fs.statSync(full).mode & 0o7777).toString(8)}\0`).update(fs.readFileSync(full)).update('\0');
      }
    };
    walk(file);
  } else {
    hash.update(`${(stat.mode & 0o7777).toString(8)}\0`).update(fs.readFileSync(file));
  }
  return hash.digest('hex');
}

/** The last ERROR/FATAL line a script logged, else its last line: what to show for a failure. */
export function failureLine(run: ChildRun): string {
  const lines = `${run.stderr}\n${run.stdout}`.split('\n').map((l) => l.trim()).filter(Boolean);
  const errors = lines.filter((l) => /\[(ERROR|FATAL)\]/.test(l));
  const pick = errors.at(-1) ?? lines.at(-1) ?? '';
  return pick.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[(ERROR|FATAL)\] /, '');
}

/** What a script's own last line says, for bash originals that record nothing. */
export function claimsNoChange(run: ChildRun): boolean {
  const last = `${run.stderr}\n${run.stdout}`.trim().split('\n').at(-1) ?? '';
  return /\b(unchanged|no changes?|nothing to (do|change)|up to date|already)\b/i.test(last);
}
