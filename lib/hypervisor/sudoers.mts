// sudo rights for the users Phoenix creates: one fragment per user,
// /etc/sudoers.d/phoenix-<user>, mode 0440, root-owned. /etc/sudoers itself
// is never edited (the bash appended to it without checking, and one typo
// there locks every sudoer out): a fragment is only installed when
// /etc/sudoers reads /etc/sudoers.d (Debian's `@includedir`, or the older
// `#includedir`), and only after the real `visudo -cf` has parsed it from a
// private temporary file; then it is renamed into place, so sudo never sees
// a half-written or unchecked fragment.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PhoenixError } from '../core/errors.mts';
import { readIfExists, removeFile, writeFileAtomic, type WriteOutcome } from '../core/fs.mts';
import type { PhoenixOptions } from '../core/env.mts';
import { query } from '../core/runner.mts';
import { hostFile } from './host.mts';

export const SUDOERS = '/etc/sudoers';
export const SUDOERS_DIR = '/etc/sudoers.d';
const INCLUDEDIR = /^[ \t]*[@#]includedir[ \t]+\/etc\/sudoers\.d\/?[ \t]*$/m;

/** The fragment's path on the host for a name (sudo skips names with a '.' or ending in '~'). */
export function fragmentPath(name: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new PhoenixError(`sudoers fragment name '${name}': only letters, digits, '_' and '-' (sudo ignores files whose name holds a '.')`);
  return `${SUDOERS_DIR}/phoenix-${name}`;
}

/** The rule giving one user every right, as Debian's own `%sudo` line does for the group. */
export function fullAccessRule(user: string): string {
  return `${user} ALL=(ALL:ALL) ALL`;
}

/** Whether /etc/sudoers reads the fragments (undefined: sudo is not installed). */
export function sudoersIncludesDir(options: PhoenixOptions): boolean | undefined {
  const main = readIfExists(hostFile(options, SUDOERS));
  if (main === undefined) return undefined;
  return INCLUDEDIR.test(main.toString('utf8'));
}

function fragmentText(name: string, rules: readonly string[]): string {
  return [`# Written by Phoenix (phoenix setup) for ${name}; replaced on every run. Checked with visudo -cf before it is installed.`, ...rules, ''].join('\n');
}

/**
 * Install /etc/sudoers.d/phoenix-<name> holding `rules`, checked with
 * `visudo -cf` first. Refuses (nothing written) when /etc/sudoers does not
 * include the directory or visudo rejects the text. Dry-run: the check still
 * runs, the write is only reported.
 */
export async function ensureSudoersFragment(options: PhoenixOptions, name: string, rules: readonly string[]): Promise<WriteOutcome> {
  const hostPath = fragmentPath(name);
  const includes = sudoersIncludesDir(options);
  if (includes === undefined) throw new PhoenixError(`${SUDOERS} does not exist: sudo is not installed on this host`, { hint: 'apt-get install sudo' });
  if (!includes) {
    throw new PhoenixError(`${hostFile(options, SUDOERS)} has no '@includedir ${SUDOERS_DIR}' line, so a fragment there would be ignored; Phoenix does not edit ${SUDOERS}`, {
      hint: `add the line '@includedir ${SUDOERS_DIR}' with visudo, then run setup again`,
    });
  }
  const text = fragmentText(name, rules);
  const target = hostFile(options, hostPath);
  const current = readIfExists(target);
  if (current !== undefined && current.toString('utf8') === text && (fs.statSync(target).mode & 0o7777) === 0o440) return 'unchanged';
  await checkWithVisudo(text, hostPath);
  return writeFileAtomic(target, text, { mode: 0o440, uid: 0, gid: 0 });
}

/** Remove Phoenix's fragment for `name` (sudo_access turned off). */
export function removeSudoersFragment(options: PhoenixOptions, name: string): 'removed' | 'absent' {
  return removeFile(hostFile(options, fragmentPath(name)));
}

/** `visudo -cf` on a private copy of the text; throws with visudo's words when it does not parse. */
export async function checkWithVisudo(text: string, shownAs: string): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phoenix-sudoers-'));
  const file = path.join(dir, 'fragment');
  try {
    fs.writeFileSync(file, text, { mode: 0o440 });
    const result = await query({ cmd: 'visudo', args: ['-c', '-f', file], allowFailure: true, quiet: true });
    if (result.code === 127) throw new PhoenixError(`visudo is not installed: cannot check ${shownAs} before installing it`, { hint: 'apt-get install sudo' });
    if (result.code !== 0) {
      const said = `${result.stderr}${result.stdout}`.split(file).join(shownAs).trim();
      throw new PhoenixError(`visudo rejects the sudoers fragment ${shownAs}; nothing was installed: ${said}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
