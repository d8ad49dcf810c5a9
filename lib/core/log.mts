// Logging in the bash toolkit's line format, so operators' greps keep working:
//   YYYY-MM-DD HH:MM:SS [LEVEL] <script>: <message>
// Lines go to stderr (stdout is for data) and are appended to the main log
// file. Unlike the bash, colour is used only on a terminal and never written
// to the file, DEBUG is off unless PHOENIX_DEBUG=true, and secrets are masked.
// Colours come from chalk instances whose level this module decides (a
// terminal and no NO_COLOR, else level 0, which returns text untouched), not
// from chalk's own detection, so the plain output is the bash format byte for
// byte and a test can switch colour on and off.
// Masking happens here, at the writers, for every line: and once a script
// has started, `guardProcessOutput` masks whatever else reaches stdout or
// stderr (tables, summaries, usage), so no output path can bypass it.

import fs from 'node:fs';
import path from 'node:path';
import { Chalk, type ChalkInstance } from 'chalk';
import { redact } from './redact.mts';

export type Level = 'DEBUG' | 'INFO' | 'SUCCESS' | 'WARN' | 'ERROR' | 'FATAL';

export interface LogSettings {
  script: string;
  file: string | undefined;
  debug: boolean;
  /** Colour the terminal lines; by default when stderr is a terminal and NO_COLOR is unset. */
  color: boolean;
  /** Where terminal output goes; tests swap it. */
  write: (line: string) => void;
}

/** Colour only for a terminal, and never when NO_COLOR is set to anything but the empty string. */
export function colourWanted(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(stream.isTTY) && !env.NO_COLOR;
}

// Level 1 is the 16 basic colours, all the bash toolkit ever used.
const COLOURED = new Chalk({ level: 1 });
const PLAIN = new Chalk({ level: 0 });

/** A chalk that colours when `colour` is true and otherwise returns every text unchanged. */
export function chalkWith(colour: boolean): ChalkInstance {
  return colour ? COLOURED : PLAIN;
}

/** The chalk for text written to `stream` (a table on stdout, say), by the rule of colourWanted. */
export function chalkFor(stream: { isTTY?: boolean } = process.stdout): ChalkInstance {
  return chalkWith(colourWanted(stream));
}

// The bash toolkit's colours per level.
const LEVEL_STYLES: Record<Level, (chalk: ChalkInstance) => ChalkInstance> = {
  DEBUG: (chalk) => chalk.blue,
  INFO: (chalk) => chalk.green,
  SUCCESS: (chalk) => chalk.green,
  WARN: (chalk) => chalk.bold.yellow,
  ERROR: (chalk) => chalk.red,
  FATAL: (chalk) => chalk.red,
};

const settings: LogSettings = {
  script: path.basename(process.argv[1] ?? 'phoenix'),
  file: undefined,
  debug: false,
  color: colourWanted(process.stderr),
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
  writeTerminal(level, line);
  appendToFile(line);
}

function writeTerminal(level: Level, line: string): void {
  settings.write(`${LEVEL_STYLES[level](chalkWith(settings.color))(line)}\n`);
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
    writeTerminal('WARN', redact(formatLine('WARN', `cannot append to log file ${settings.file}: ${reason}; logging to stderr only`)));
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
