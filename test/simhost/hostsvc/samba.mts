// Samba's password database on the simulated host: `smbpasswd` (package
// samba-common-bin) and `pdbedit` (package samba) over
// <state>/host-samba.json { users: { <name>: { uid, password } } }, where
// `password` is a marker holding the sha256 of the password, never the
// password. A missing file is an empty database, as on a fresh install.
// Both must be installed (a missing program is bash's 127), both need the
// Unix user to exist (in <hostfs>/etc/passwd), and they print and exit as
// Samba 4.17 does.

import path from 'node:path';

import { atomicWrite, readJson, ToolExit, withStateLock } from '../state.mts';
import { loadAccounts, passwordMarker, readStdin } from './accounts.mts';
import type { HostToolContext } from './context.mts';
import { packageInstalled } from './packages.mts';

export interface SambaState {
  users: Record<string, { uid: number; password: string; disabled?: boolean }>;
}

function stateFile(root: string): string {
  return path.join(root, 'host-samba.json');
}

export function loadSamba(root: string): SambaState {
  return readJson<SambaState>(stateFile(root), { users: {} });
}

function needPackage(ctx: HostToolContext, pkg: string): void {
  if (!packageInstalled(ctx.root, pkg)) throw new ToolExit(127, `bash: line 1: ${ctx.tool}: command not found\n`);
}

function unixUid(ctx: HostToolContext, name: string): number | undefined {
  const entry = loadAccounts(ctx).passwd.find((fields) => fields[0] === name);
  return entry === undefined ? undefined : Number(entry[2]);
}

/** `smbpasswd [-s] [-a|-x|-d|-e] <user>`: with -s, the new password twice on stdin. */
export function runSmbpasswd(ctx: HostToolContext): void {
  needPackage(ctx, 'samba-common-bin');
  let silent = false;
  let action: 'a' | 'x' | 'd' | 'e' | 'change' = 'change';
  const words: string[] = [];
  for (const arg of ctx.argv) {
    if (/^-[sadxe]+$/.test(arg)) {
      for (const letter of arg.slice(1)) {
        if (letter === 's') silent = true;
        else action = letter as 'a' | 'x' | 'd' | 'e';
      }
    } else if (arg.startsWith('-')) {
      throw new ToolExit(1, `smbpasswd: invalid option -- '${arg.slice(1, 2)}'\nWhen run by root:\n    smbpasswd [options] [username]\n`);
    } else words.push(arg);
  }
  if (words.length !== 1) throw new ToolExit(1, 'When run by root:\n    smbpasswd [options] [username]\n');
  const name = words[0]!;
  withStateLock(ctx.root, () => {
    const state = loadSamba(ctx.root);
    const uid = unixUid(ctx, name);
    if (action === 'x') {
      if (!state.users[name]) throw new ToolExit(1, `Failed to find entry for user ${name}.\nFailed to delete entry for user ${name}.\n`);
      delete state.users[name];
      atomicWrite(stateFile(ctx.root), `${JSON.stringify(state, null, 2)}\n`, 0o600);
      ctx.out(`Deleted user ${name}.\n`);
      return;
    }
    if (action === 'd' || action === 'e') {
      const entry = state.users[name];
      if (!entry) throw new ToolExit(1, `Failed to find entry for user ${name}.\n`);
      entry.disabled = action === 'd';
      atomicWrite(stateFile(ctx.root), `${JSON.stringify(state, null, 2)}\n`, 0o600);
      ctx.out(`${action === 'd' ? 'Disabled' : 'Enabled'} user ${name}.\n`);
      return;
    }
    if (!silent) throw new ToolExit(1, 'simhost: smbpasswd without -s (a prompt on the terminal) is not simulated\n');
    // -s: two lines on stdin, "New SMB password:" and "Retype new SMB password:".
    const [first, second] = readStdin().split('\n');
    if (first === undefined || second === undefined) throw new ToolExit(1, 'Unable to get new password.\n');
    if (first !== second) throw new ToolExit(1, 'Mismatch - password unchanged.\nUnable to get new password.\n');
    if (uid === undefined) {
      throw new ToolExit(1, action === 'a' ? `Failed to add entry for user ${name}.\n` : `Failed to find entry for user ${name}.\nFailed to modify password entry for user ${name}\n`);
    }
    const existed = state.users[name] !== undefined;
    if (action === 'change' && !existed) throw new ToolExit(1, `Failed to find entry for user ${name}.\nFailed to modify password entry for user ${name}\n`);
    state.users[name] = { uid, password: passwordMarker(first) };
    atomicWrite(stateFile(ctx.root), `${JSON.stringify(state, null, 2)}\n`, 0o600);
    if (action === 'a' && !existed) ctx.out(`Added user ${name}.\n`);
  });
}

/** `pdbedit -L` (`user:uid:full name` lines) and `pdbedit -L -u <user>`; other uses are not simulated. */
export function runPdbedit(ctx: HostToolContext): void {
  needPackage(ctx, 'samba');
  let list = false;
  let user: string | undefined;
  for (let i = 0; i < ctx.argv.length; i++) {
    const arg = ctx.argv[i]!;
    if (arg === '-L' || arg === '--list') list = true;
    else if (arg === '-u' || arg === '--user') user = ctx.argv[++i];
    else if (arg.startsWith('--user=')) user = arg.slice(7);
    else throw new ToolExit(1, `simhost: pdbedit ${arg} is not simulated\n`);
  }
  if (!list) throw new ToolExit(1, 'simhost: pdbedit without -L is not simulated\n');
  const state = loadSamba(ctx.root);
  const names = Object.keys(state.users).sort();
  if (user !== undefined) {
    const entry = state.users[user];
    if (!entry) throw new ToolExit(255, `Username not found!\n`);
    ctx.out(`${user}:${entry.uid}:\n`);
    return;
  }
  for (const name of names) ctx.out(`${name}:${state.users[name]!.uid}:\n`);
}
