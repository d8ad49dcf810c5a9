// Logging in the bash toolkit's line format, so operators' greps keep working:
//   YYYY-MM-DD HH:MM:SS [LEVEL] <script>: <message>
// Lines go to stderr (stdout is for data) and are appended to the main log
// file. Unlike the bash, colour is used only on a terminal and never written
// to the file, DEBUG is off unless PHOENIX_DEBUG=true, and secrets are masked.
// Masking happens here, at the writers, for every line: and once a script
// has started, `guardProcessOutput` masks whatever else reaches stdout or
// stderr (tables, summaries, usage), so no output path can bypass it.

import fs from 'node:fs';
import path from 'node:path';
import { redact } from './redact.mts';

export type Level = 'DEBUG' | 'INFO' | 'SUCCESS' | 'WARN' | 'ERROR' | 'FATAL';

export interface LogSettings {
  script: string;
  file: string | undefined;
  debug: boolean;
  color: boolean;
  /** Where terminal output goes; tests swap it. */
  write: (line: string) => void;
}

const COLORS: Record<Level, string> = {
  DEBUG: '\x1b[0;34m',
  INFO: '\x1b[0;32m',
  SUCCESS: '\x1b[0;32m',
  WARN: '\x1b[1;33m',
  ERROR: '\x1b[0;31m',
  FATAL: '\x1b[0;31m',
};
const RESET = '\x1b[0m';

const settings: LogSettings = {
  script: path.basename(process.argv[1] ?? 'phoenix'),
  file: undefined,
  debug: false,
  color: Boolean(process.stderr.isTTY) && !process.env.NO_COLOR,
  write: (line) => process.stderr.write(line),
};

let fileBroken = false;
let fileDirReady = false;

export function configureLog(update: Partial<LogSettings>): void {
  if ('file' in update) {
    fileBroken = false;
    fileDirReady = false;
  }
  Object.assign(settings, update);
}

export function logSettings(): Readonly<LogSettings> {
  return settings;
}

export function timestamp(date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())} ${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}`;
}

export function formatLine(level: Level, message: string, script = settings.script, date = new Date()): string {
  return `${timestamp(date)} [${level}] ${script}: ${message}`;
}

export function log(level: Level, message: string): void {
  if (level === 'DEBUG' && !settings.debug) return;
  // The whole line: the script name and anything a caller put around the message too.
  const line = redact(formatLine(level, message));
  settings.write(settings.color ? `${COLORS[level]}${line}${RESET}\n` : `${line}\n`);
  appendToFile(line);
}

export const debug = (message: string): void => log('DEBUG', message);
export const info = (message: string): void => log('INFO', message);
export const success = (message: string): void => log('SUCCESS', message);
export const warn = (message: string): void => log('WARN', message);
export const error = (message: string): void => log('ERROR', message);

function appendToFile(line: string): void {
  if (!settings.file || fileBroken) return;
  try {
    if (!fileDirReady) {
      fs.mkdirSync(path.dirname(settings.file), { recursive: true });
      fileDirReady = true;
    }
    // One write per line with O_APPEND: concurrent Phoenix processes
    // interleave whole lines, never fragments.
    fs.appendFileSync(settings.file, `${line}\n`, { mode: 0o640 });
  } catch (err) {
    // The bash kept going when tee could not write; so do we, but say it once.
    fileBroken = true;
    const reason = err instanceof Error ? err.message : String(err);
    settings.write(`${redact(formatLine('WARN', `cannot append to log file ${settings.file}: ${reason}; logging to stderr only`))}\n`);
  }
}

type WriteFn = NodeJS.WriteStream['write'];
const guarded = new WeakSet<NodeJS.WriteStream>();

/**
 * Mask secrets in everything written to the process's stdout and stderr,
 * whoever writes it: a status table, the sync summary, a usage text, a
 * child's output passed through. Idempotent; runMain installs it before a
 * script's body runs. Each write is masked on its own, so callers write
 * whole texts (the runner releases a child's output a line at a time).
 */
export function guardProcessOutput(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]): void {
  for (const stream of streams) {
    if (guarded.has(stream)) continue;
    guarded.add(stream);
    const original = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    const write = (chunk: unknown, ...rest: unknown[]): boolean => {
      if (typeof chunk === 'string') {
        const encoding = typeof rest[0] === 'string' ? (rest[0] as BufferEncoding) : 'utf8';
        const text = encoding === 'utf8' || encoding === 'utf-8' ? chunk : Buffer.from(chunk, encoding).toString('utf8');
        return original(redact(text), ...(typeof rest[0] === 'string' ? ['utf8', ...rest.slice(1)] : rest));
      }
      if (chunk instanceof Uint8Array) return original(redact(Buffer.from(chunk).toString('utf8')), ...rest.filter((r) => typeof r === 'function'));
      return original(chunk, ...rest);
    };
    stream.write = write as WriteFn;
  }
}
