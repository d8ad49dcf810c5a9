// The host's accounts as shadow-utils 4.13 (Debian 12, Proxmox VE 8) keeps
// them: useradd, usermod, groupadd and chpasswd edit <hostfs>/etc/passwd,
// group and shadow. A node whose files are missing has a fresh install's
// (root, Debian's system users and groups, sudo = gid 27), written the first
// time a tool needs them. Exit codes and messages are shadow-utils': 2 usage,
// 3 bad value, 6 no such user or group, 9 name already in use; chpasswd 1.
//
// chpasswd never stores a clear-text password: the shadow field gets a
// marker holding its sha256 (`$sim-sha256$<hex>`), a hash given with -e is
// stored as it is. gshadow is not kept (nothing Phoenix does reads it), and
// the home directory of `useradd -m` gets no skeleton files.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { atomicWrite, readStdinSync, ToolExit, withStateLock } from '../state.mts';
import { onHostRoot, type HostToolContext } from './context.mts';

const PASSWD = `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
games:x:5:60:games:/usr/games:/usr/sbin/nologin
man:x:6:12:man:/var/cache/man:/usr/sbin/nologin
lp:x:7:7:lp:/var/spool/lpd:/usr/sbin/nologin
mail:x:8:8:mail:/var/mail:/usr/sbin/nologin
news:x:9:9:news:/var/spool/news:/usr/sbin/nologin
uucp:x:10:10:uucp:/var/spool/uucp:/usr/sbin/nologin
proxy:x:13:13:proxy:/bin:/usr/sbin/nologin
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
backup:x:34:34:backup:/var/backups:/usr/sbin/nologin
list:x:38:38:Mailing List Manager:/var/list:/usr/sbin/nologin
irc:x:39:39:ircd:/run/ircd:/usr/sbin/nologin
_apt:x:42:65534::/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
systemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin
messagebus:x:100:107::/nonexistent:/usr/sbin/nologin
sshd:x:101:65534::/run/sshd:/usr/sbin/nologin
postfix:x:102:110::/var/spool/postfix:/usr/sbin/nologin
_chrony:x:103:111:Chrony daemon,,,:/var/lib/chrony:/usr/sbin/nologin
`;

const GROUP_NAMES: Array<[string, number]> = [
  ['root', 0], ['daemon', 1], ['bin', 2], ['sys', 3], ['adm', 4], ['tty', 5], ['disk', 6], ['lp', 7], ['mail', 8],
  ['news', 9], ['uucp', 10], ['man', 12], ['proxy', 13], ['kmem', 15], ['dialout', 20], ['fax', 21], ['voice', 22],
  ['cdrom', 24], ['floppy', 25], ['tape', 26], ['sudo', 27], ['audio', 29], ['dip', 30], ['www-data', 33], ['backup', 34],
  ['operator', 37], ['list', 38], ['irc', 39], ['src', 40], ['shadow', 42], ['utmp', 43], ['video', 44], ['sasl', 45],
  ['plugdev', 46], ['staff', 50], ['games', 60], ['users', 100], ['systemd-journal', 999], ['systemd-network', 998],
  ['messagebus', 107], ['postdrop', 109], ['postfix', 110], ['_chrony', 111], ['nogroup', 65534],
];

const SHADOW_ROOT_HASH = '$y$j9T$simulatedrootsalt$simulatedrootpasswordhashvalue0000000000000';

/** Days since the epoch, as shadow's "last change" field. */
function today(): number {
  return Math.floor(Date.now() / 86_400_000);
}

export interface AccountFiles {
  passwd: string[][];
  group: string[][];
  shadow: string[][];
}

function fileOf(ctx: Pick<HostToolContext, 'hostRoot'>, name: 'passwd' | 'group' | 'shadow'): string {
  return onHostRoot(ctx.hostRoot, `/etc/${name}`);
}

function defaults(name: 'passwd' | 'group' | 'shadow'): string {
  if (name === 'passwd') return PASSWD;
  if (name === 'group') return GROUP_NAMES.map(([group, gid]) => `${group}:x:${gid}:\n`).join('');
  return PASSWD.split('\n').filter(Boolean).map((line) => {
    const user = line.split(':')[0]!;
    return `${user}:${user === 'root' ? SHADOW_ROOT_HASH : '*'}:19700:0:99999:7:::\n`;
  }).join('');
}

/** The three files, written with a fresh node's content when missing. */
export function loadAccounts(ctx: Pick<HostToolContext, 'hostRoot'>): AccountFiles {
  const read = (name: 'passwd' | 'group' | 'shadow'): string[][] => {
    const file = fileOf(ctx, name);
    if (!fs.existsSync(file)) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      atomicWrite(file, defaults(name), name === 'shadow' ? 0o640 : 0o644);
    }
    return fs.readFileSync(file, 'utf8').split('\n').filter((line) => line !== '').map((line) => line.split(':'));
  };
  return { passwd: read('passwd'), group: read('group'), shadow: read('shadow') };
}

function saveAccounts(ctx: HostToolContext, files: AccountFiles): void {
  for (const name of ['passwd', 'group', 'shadow'] as const) {
    atomicWrite(fileOf(ctx, name), files[name].map((fields) => `${fields.join(':')}\n`).join(''), name === 'shadow' ? 0o640 : 0o644);
  }
}

const USER_NAME = /^[a-z_][a-z0-9_-]*\$?$/;

function nextFreeId(used: Set<number>, from = 1000): number {
  let id = from;
  while (used.has(id)) id++;
  return id;
}

interface ShadowOptions {
  flags: Set<string>;
  values: Map<string, string>;
  words: string[];
}

/** getopt_long for shadow-utils: short flags may be bundled, `--x=v`, `-xv`. */
function parseShadowArgs(tool: string, argv: readonly string[], boolean: Record<string, string>, valued: Record<string, string>, usageText: string): ShadowOptions {
  const flags = new Set<string>();
  const values = new Map<string, string>();
  const words: string[] = [];
  const bad = (message: string): never => {
    throw new ToolExit(2, `${tool}: ${message}\n${usageText}`);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      words.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
      const shortB = Object.entries(boolean).find(([, long]) => long === name)?.[0];
      const shortV = Object.entries(valued).find(([, long]) => long === name)?.[0];
      if (shortB !== undefined) flags.add(shortB);
      else if (shortV !== undefined) {
        const value = inline ?? argv[++i];
        if (value === undefined) bad(`option '--${name}' requires an argument`);
        values.set(shortV, value!);
      } else bad(`unrecognized option '${arg}'`);
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j]!;
        if (letter in boolean) flags.add(letter);
        else if (letter in valued) {
          const value = j + 1 < arg.length ? arg.slice(j + 1) : argv[++i];
          if (value === undefined) bad(`option requires an argument -- '${letter}'`);
          values.set(letter, value!);
          break;
        } else bad(`invalid option -- '${letter}'`);
      }
      continue;
    }
    words.push(arg);
  }
  return { flags, values, words };
}

const USERADD_USAGE = 'Usage: useradd [options] LOGIN\n       useradd -D\n       useradd -D [options]\n';
const USERMOD_USAGE = 'Usage: usermod [options] LOGIN\n';
const GROUPADD_USAGE = 'Usage: groupadd [options] GROUP\n';
const CHPASSWD_USAGE = 'Usage: chpasswd [options]\n';

function groupList(files: AccountFiles, tool: string, list: string): string[] {
  const names = list.split(',').filter((name) => name !== '');
  for (const name of names) {
    if (!files.group.some((g) => g[0] === name || g[2] === name)) throw new ToolExit(6, `${tool}: group '${name}' does not exist\n`);
  }
  return names.map((name) => files.group.find((g) => g[0] === name || g[2] === name)![0]!);
}

function addMember(files: AccountFiles, group: string, user: string): void {
  const entry = files.group.find((g) => g[0] === group)!;
  const members = (entry[3] ?? '').split(',').filter(Boolean);
  if (!members.includes(user)) members.push(user);
  entry[3] = members.join(',');
}

export function runUseradd(ctx: HostToolContext): void {
  const opts = parseShadowArgs('useradd', ctx.argv, { m: 'create-home', M: 'no-create-home', U: 'user-group', N: 'no-user-group', r: 'system' }, { s: 'shell', G: 'groups', g: 'gid', c: 'comment', d: 'home-dir', u: 'uid', p: 'password' }, USERADD_USAGE);
  if (opts.words.length !== 1) throw new ToolExit(2, USERADD_USAGE);
  const name = opts.words[0]!;
  if (!USER_NAME.test(name) || name.length > 32) throw new ToolExit(3, `useradd: invalid user name '${name}': use --badname to ignore\n`);
  withStateLock(ctx.root, () => {
    const files = loadAccounts(ctx);
    if (files.passwd.some((u) => u[0] === name)) throw new ToolExit(9, `useradd: user '${name}' already exists\n`);
    const supplementary = opts.values.has('G') ? groupList(files, 'useradd', opts.values.get('G')!) : [];
    const uids = new Set(files.passwd.map((u) => Number(u[2])));
    const gids = new Set(files.group.map((g) => Number(g[2])));
    const uid = opts.values.has('u') ? Number(opts.values.get('u')) : nextFreeId(uids);
    if (uids.has(uid)) throw new ToolExit(4, `useradd: UID ${uid} is not unique\n`);
    let gid: number;
    if (opts.values.has('g')) {
      const wanted = opts.values.get('g')!;
      const group = files.group.find((g) => g[0] === wanted || g[2] === wanted);
      if (!group) throw new ToolExit(6, `useradd: group '${wanted}' does not exist\n`);
      gid = Number(group[2]);
    } else if (opts.flags.has('N')) {
      gid = 100;
    } else {
      // USERGROUPS_ENAB yes (Debian's login.defs): a group of the user's name.
      if (files.group.some((g) => g[0] === name)) throw new ToolExit(9, `useradd: group ${name} exists - if you want to add this user to that group, use -g.\n`);
      gid = gids.has(uid) ? nextFreeId(gids) : uid;
      files.group.push([name, 'x', String(gid), '']);
    }
    const home = opts.values.get('d') ?? `/home/${name}`;
    // Debian's /etc/default/useradd: SHELL=/bin/sh.
    files.passwd.push([name, 'x', String(uid), String(gid), opts.values.get('c') ?? '', home, opts.values.get('s') ?? '/bin/sh']);
    files.shadow.push([name, opts.values.get('p') ?? '!', String(today()), '0', '99999', '7', '', '', '']);
    for (const group of supplementary) addMember(files, group, name);
    saveAccounts(ctx, files);
    if (opts.flags.has('m')) {
      const dir = onHostRoot(ctx.hostRoot, home);
      if (fs.existsSync(dir)) ctx.err(`useradd: warning: the home directory ${home} already exists.\nuseradd: Not copying any file from skel directory into it.\n`);
      else fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
  });
}

export function runUsermod(ctx: HostToolContext): void {
  const opts = parseShadowArgs('usermod', ctx.argv, { a: 'append', L: 'lock', U: 'unlock' }, { s: 'shell', G: 'groups', c: 'comment' }, USERMOD_USAGE);
  if (opts.words.length !== 1) throw new ToolExit(2, USERMOD_USAGE);
  if (opts.flags.has('a') && !opts.values.has('G')) throw new ToolExit(2, `usermod: -a flag is ONLY allowed with the -G flag\n${USERMOD_USAGE}`);
  const name = opts.words[0]!;
  withStateLock(ctx.root, () => {
    const files = loadAccounts(ctx);
    const user = files.passwd.find((u) => u[0] === name);
    if (!user) throw new ToolExit(6, `usermod: user '${name}' does not exist\n`);
    if (opts.values.has('G')) {
      const groups = groupList(files, 'usermod', opts.values.get('G')!);
      if (!opts.flags.has('a')) {
        for (const entry of files.group) entry[3] = (entry[3] ?? '').split(',').filter((m) => m !== '' && m !== name).join(',');
      }
      for (const group of groups) addMember(files, group, name);
    }
    if (opts.values.has('s')) user[6] = opts.values.get('s')!;
    if (opts.values.has('c')) user[4] = opts.values.get('c')!;
    const shadow = files.shadow.find((s) => s[0] === name);
    if (shadow && opts.flags.has('L') && !shadow[1]!.startsWith('!')) shadow[1] = `!${shadow[1]}`;
    if (shadow && opts.flags.has('U')) {
      if (shadow[1] === '!' || shadow[1] === '') throw new ToolExit(1, "usermod: unlocking the user's password would result in a passwordless account.\nYou should set a password with usermod -p to unlock this user's password.\n");
      shadow[1] = shadow[1]!.replace(/^!/, '');
    }
    saveAccounts(ctx, files);
  });
}

export function runGroupadd(ctx: HostToolContext): void {
  const opts = parseShadowArgs('groupadd', ctx.argv, { f: 'force', r: 'system' }, { g: 'gid' }, GROUPADD_USAGE);
  if (opts.words.length !== 1) throw new ToolExit(2, GROUPADD_USAGE);
  const name = opts.words[0]!;
  if (!USER_NAME.test(name) || name.length > 32) throw new ToolExit(3, `groupadd: '${name}' is not a valid group name\n`);
  withStateLock(ctx.root, () => {
    const files = loadAccounts(ctx);
    if (files.group.some((g) => g[0] === name)) {
      if (opts.flags.has('f')) return;
      throw new ToolExit(9, `groupadd: group '${name}' already exists\n`);
    }
    const gids = new Set(files.group.map((g) => Number(g[2])));
    const gid = opts.values.has('g') ? Number(opts.values.get('g')) : opts.flags.has('r') ? nextFreeId(gids, 100) : nextFreeId(gids);
    if (gids.has(gid)) throw new ToolExit(4, `groupadd: GID '${gid}' already exists\n`);
    files.group.push([name, 'x', String(gid), '']);
    saveAccounts(ctx, files);
  });
}

/** stdin of this process (the runner's `input`), as text. */
export function readStdin(): string {
  return readStdinSync().toString('utf8');
}

/** What the simulator keeps for a clear-text password: never the password itself. */
export function passwordMarker(password: string): string {
  return `$sim-sha256$${crypto.createHash('sha256').update(password).digest('hex')}`;
}

export function runChpasswd(ctx: HostToolContext): void {
  const opts = parseShadowArgs('chpasswd', ctx.argv, { e: 'encrypted', m: 'md5' }, { c: 'crypt-method', s: 'sha-rounds' }, CHPASSWD_USAGE);
  if (opts.words.length > 0) throw new ToolExit(2, CHPASSWD_USAGE);
  const lines = readStdin().split('\n').filter((line) => line !== '');
  withStateLock(ctx.root, () => {
    const files = loadAccounts(ctx);
    const errors: string[] = [];
    lines.forEach((line, i) => {
      const colon = line.indexOf(':');
      if (colon < 0) {
        errors.push(`chpasswd: line ${i + 1}: missing new password\n`);
        return;
      }
      const name = line.slice(0, colon);
      const secret = line.slice(colon + 1);
      const shadow = files.shadow.find((s) => s[0] === name);
      if (!shadow || !files.passwd.some((u) => u[0] === name)) {
        errors.push(`chpasswd: line ${i + 1}: user '${name}' does not exist\n`);
        return;
      }
      shadow[1] = opts.flags.has('e') ? secret : passwordMarker(secret);
      shadow[2] = String(today());
    });
    if (errors.length > 0) throw new ToolExit(1, `${errors.join('')}chpasswd: error detected, changes ignored\n`);
    saveAccounts(ctx, files);
  });
}
