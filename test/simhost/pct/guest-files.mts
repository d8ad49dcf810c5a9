// `pct exec`, `pct push` and `pct pull`: a running container's file tree
// (guests/<id>/fs, with its bind mounts and id maps) seen from the host.

import fs from 'node:fs';
import path from 'node:path';

import type { Ctx } from '../cli.mts';
import { readsStdin } from '../guest-common/exec.mts';
import { lookupGroup, lookupUser } from '../guest-accounts.mts';
import { openForWrite, readAs } from '../guest-builtins.mts';
import { GuestFs, guestFsDir, runCommand, type HostMount } from '../guestfs.mts';
import { isRunning, loadGuest } from '../guests.mts';
import { ERRNO_TEXT } from '../guestview.mts';
import { CT_ROOT, idMapsOf } from '../idmap.mts';
import { takeExecRule, timeScale } from '../inject.mts';
import { parsePropertyString, type GuestConfig } from '../pveconf.mts';
import { die, loadRuntime, sleepSync, ToolExit } from '../state.mts';

/** The simulated host's own files: PHOENIX_HOST_ROOT, default <state>/hostfs (as lib/core/env.mts has it). */
export function hostRootOf(ctx: Ctx): string {
  return process.env.PHOENIX_HOST_ROOT || path.join(ctx.root, 'hostfs');
}

function guestFsFor(ctx: Ctx, vmid: string, config: GuestConfig): GuestFs {
  const mounts: HostMount[] = [];
  for (const [key, value] of Object.entries(config.main.props)) {
    if (!/^mp\d+$/.test(key)) continue;
    const props = parsePropertyString(value, 'volume');
    if (!props.volume!.startsWith('/') || !props.mp) continue;
    // A bind mount whose host directory exists is the host's directory, as in a real CT.
    // The simulated host's own files live under PHOENIX_HOST_ROOT (default <state>/hostfs,
    // as lib/core/env.mts has it); a directory there wins over the same path on the real machine.
    const hostRoot = hostRootOf(ctx);
    const host = [path.join(hostRoot, props.volume!), props.volume!].find((dir) => fs.existsSync(dir) && fs.statSync(dir).isDirectory());
    if (host) mounts.push({ guest: props.mp, host });
  }
  const base = guestFsDir(ctx.root, vmid);
  fs.mkdirSync(base, { recursive: true });
  return new GuestFs(base, mounts, idMapsOf(config).maps);
}

export function exec(ctx: Ctx, vmid: string, command: string[]): void {
  ctx.begin();
  const config = loadGuest(ctx, 'lxc', vmid);
  const rt = loadRuntime(ctx.root);
  if (!isRunning(rt, vmid, ctx.root, 'lxc')) die(`container '${vmid}' not running!`);
  if (command.length === 0) die('missing command at /usr/share/perl5/PVE/CLI/pct.pm line 246.');
  const stdin = readsStdin(command) ? ctx.stdin() : undefined;
  const rule = takeExecRule(ctx.root, ctx.injection, { tool: 'pct', guest: vmid, command, ...(stdin ? { stdin: stdin.toString('latin1') } : {}) });
  if (rule) {
    sleepSync((rule.duration_ms ?? 0) * timeScale(ctx.injection));
    throw new ToolExit(rule.exit ?? 0, rule.stderr ?? '', rule.stdout ?? '');
  }
  const result = runCommand(guestFsFor(ctx, vmid, config), command, { launcher: 'lxc-attach', vmid, root: ctx.root, ...(stdin ? { stdin } : {}) });
  throw new ToolExit(result.exit, result.stderr, result.stdout);
}

/** --user/--group as container ids (names looked up in the guest, as pct does after entering it). */
function ownerIds(g: GuestFs, user: string | undefined, group: string | undefined): { uid?: number; gid?: number } {
  const ids: { uid?: number; gid?: number } = {};
  if (user !== undefined) {
    const entry = /^\d+$/.test(user) ? { uid: Number(user) } : lookupUser(g, user);
    if (!entry) die(`failed to get uid for: ${user}`);
    ids.uid = entry.uid;
  }
  if (group !== undefined) {
    const entry = /^\d+$/.test(group) ? { gid: Number(group) } : lookupGroup(g, group);
    if (!entry) die(`failed to get gid for: ${group}`);
    ids.gid = entry.gid;
  }
  return ids;
}

function parsePerms(perms: string | undefined): number | undefined {
  if (perms === undefined) return undefined;
  const text = perms.startsWith('0') ? perms : `0${perms}`;
  if (!/^0[0-7]*$/.test(text) && !/^0x[0-9a-f]+$/i.test(text)) die(`invalid mode: '${text}'`);
  return parseInt(text, text.startsWith('0x') ? 16 : 8);
}

/** Open-or-create on the host (pull), as pct's create_file does: a new file gets 0666 & ~umask unless --perms says otherwise. */
function writeTarget(target: string, shownPath: string, data: Buffer, perms: number | undefined): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(target);
  } catch {
    st = undefined;
  }
  if (st?.isDirectory()) die(`failed to create file: ${shownPath}: Is a directory`);
  if (!fs.existsSync(path.dirname(target))) die(`failed to create file: ${shownPath}: No such file or directory`);
  fs.writeFileSync(target, data);
  if (perms !== undefined) fs.chmodSync(target, perms);
  else if (!st) fs.chmodSync(target, 0o644);
}

export function push(ctx: Ctx, vmid: string, file: string, destination: string, opts: Record<string, string>): void {
  ctx.begin([{ kind: 'lxc', vmid }]);
  const rt = loadRuntime(ctx.root);
  if (!isRunning(rt, vmid, ctx.root, 'lxc')) die('can only push files to a running CT');
  const config = loadGuest(ctx, 'lxc', vmid, { inWorker: true });
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch {
    die(`failed to open ${file} for reading`);
  }
  const g = guestFsFor(ctx, vmid, config);
  const perms = parsePerms(opts.perms);
  const owner = ownerIds(g, opts.user, opts.group);
  // pct writes from inside the container's namespaces, as container root, and
  // opens with O_NOFOLLOW: a symlink as the destination is refused (ELOOP).
  if (g.locate(destination, { follow: false }).stat?.isSymbolicLink()) die(`failed to create file: ${destination}: Too many levels of symbolic links`);
  const opened = openForWrite(g, CT_ROOT, destination);
  if (typeof opened === 'string') die(`failed to create file: ${destination}: ${ERRNO_TEXT[opened]}`);
  fs.writeFileSync(opened.loc.host, data);
  if (perms !== undefined) fs.chmodSync(opened.loc.host, perms);
  else if (opened.created) fs.chmodSync(opened.loc.host, 0o644);
  const loc = { ...opened.loc, stat: fs.lstatSync(opened.loc.host) };
  if (opened.created) g.created(CT_ROOT, loc);
  if (owner.uid !== undefined || owner.gid !== undefined) {
    const now = g.ctIds(loc.guest, fs.lstatSync(loc.host));
    const error = g.chownCt(loc, owner.uid ?? now.uid, owner.gid ?? now.gid);
    if (error) die(`failed to change file owner: ${ERRNO_TEXT[error]}`);
  }
}

export function pull(ctx: Ctx, vmid: string, source: string, destination: string, opts: Record<string, string>): void {
  ctx.begin([{ kind: 'lxc', vmid }]);
  const rt = loadRuntime(ctx.root);
  // pve-container's message lacks the newline, so Perl appends where it died.
  if (!isRunning(rt, vmid, ctx.root, 'lxc')) die('can only pull files from a running VM at /usr/share/perl5/PVE/CLI/pct.pm line 645.');
  const config = loadGuest(ctx, 'lxc', vmid, { inWorker: true });
  const g = guestFsFor(ctx, vmid, config);
  const perms = parsePerms(opts.perms);
  // The destination is created first, so it exists (empty) even when the source cannot be read.
  writeTarget(path.resolve(destination), destination, Buffer.alloc(0), perms);
  const data = readAs(g, CT_ROOT, source);
  if (typeof data === 'string') die(`failed to open ${source}: ${ERRNO_TEXT[data]}`);
  fs.writeFileSync(path.resolve(destination), data);
}
