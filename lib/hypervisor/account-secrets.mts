// Where the passwords of the accounts Phoenix creates come from: a file the
// manifest names (root-owned, mode 0600 or stricter, else refused with the
// manifest's JSON path), a value in the manifest, or a prompt on the
// terminal when one is attached and nothing was configured. Never from code.
// Every password read is registered with the log masking at once, and only
// ever handed to a command on its stdin.

import fs from 'node:fs';
import { ConfigError, PhoenixError } from '../core/errors.mts';
import type { PhoenixOptions } from '../core/env.mts';
import { addSecret } from '../core/redact.mts';
import { hostFile } from './host.mts';

/** Where a configured secret is, for messages: the manifest, its JSON pointer, the host path. */
export interface SecretSource {
  configFile: string;
  pointer: string;
  hostPath: string;
}

/**
 * Check a secret file without reading it: a regular file, owned by root,
 * no access for group or others. Returns why not, or undefined when fine.
 */
export function secretFileProblem(options: PhoenixOptions, hostPath: string): string | undefined {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(hostFile(options, hostPath));
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? `${hostPath} does not exist` : `${hostPath}: ${(err as Error).message}`;
  }
  if (!stat.isFile()) return `${hostPath} is not a regular file`;
  const mode = stat.mode & 0o7777;
  if (stat.uid !== 0 || (mode & 0o077) !== 0) {
    return `${hostPath} must be owned by root with mode 0600 or stricter (it has owner uid ${stat.uid}, mode ${mode.toString(8).padStart(4, '0')})`;
  }
  return undefined;
}

/** The first line of a checked secret file (refused with the manifest's path when unsafe or empty). */
export function readSecretFile(options: PhoenixOptions, source: SecretSource): string {
  const problem = secretFileProblem(options, source.hostPath);
  if (problem !== undefined) {
    throw new ConfigError(source.configFile, source.pointer, `${problem}; nothing was changed`, `chown root:root ${source.hostPath} && chmod 600 ${source.hostPath}`);
  }
  const value = (fs.readFileSync(hostFile(options, source.hostPath), 'utf8').split(/\r?\n/)[0] ?? '');
  if (value === '') throw new ConfigError(source.configFile, source.pointer, `${source.hostPath} is empty: its first line must be the password; nothing was changed`);
  addSecret(value);
  return value;
}

/**
 * Ask for a password twice on the terminal without echo (the bash's
 * `read -s` loop, bounded to three tries). Only called when stdin is a TTY.
 */
export async function promptPassword(label: string, input: NodeJS.ReadStream = process.stdin, output: NodeJS.WriteStream = process.stderr): Promise<string> {
  for (let attempt = 1; attempt <= 3; attempt++) {
    const first = await readHidden(`${label}: `, input, output);
    const second = await readHidden(`${label} (again): `, input, output);
    if (first !== '' && first === second) {
      addSecret(first);
      return first;
    }
    output.write(first === '' ? 'The password is empty; try again.\n' : 'The two entries differ; try again.\n');
  }
  throw new PhoenixError(`no password entered for ${label}`);
}

function readHidden(prompt: string, input: NodeJS.ReadStream, output: NodeJS.WriteStream): Promise<string> {
  return new Promise((resolve, reject) => {
    output.write(prompt);
    const wasRaw = input.isRaw;
    input.setRawMode?.(true);
    input.resume();
    let typed = '';
    const done = (error?: Error): void => {
      input.off('data', onData);
      input.setRawMode?.(wasRaw ?? false);
      input.pause();
      output.write('\n');
      if (error) reject(error);
      else resolve(typed);
    };
    const onData = (chunk: Buffer): void => {
      for (const char of chunk.toString('utf8')) {
        if (char === '\r' || char === '\n') return done();
        if (char === '\u0003') return done(new PhoenixError('interrupted at the password prompt', { exitCode: 130 }));
        if (char === '\u007f' || char === '\b') typed = typed.slice(0, -1);
        else typed += char;
      }
    };
    input.on('data', onData);
  });
}
