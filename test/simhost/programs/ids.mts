// Who is who inside a simulated guest: `stat -c`, `getent passwd|group`,
// `id`, and `setpriv` to run a command as another user, so a test (or
// Phoenix) can ask whether www-data really reads a key. Names come from the
// guest's own /etc/passwd and /etc/group; owners are shown as the container
// sees them (ids not mapped into it as 65534).

import path from 'node:path';

import { ERRNO_TEXT } from '../guestview.mts';
import { groupName, groups, initGroups, lookupGroup, lookupUser, userName, users } from '../guest-accounts.mts';
import { subjectOf } from '../guest-builtins.mts';
import { guestPrograms, runCommand, type ExecResult } from '../guestfs.mts';
import { toHost, type Subject } from '../idmap.mts';

const fail = (exit: number, stderr: string): ExecResult => ({ exit, stdout: '', stderr });

// ---------------------------------------------------------------------------
// stat -c FORMAT

guestPrograms.stat = (g, args, options) => {
  let format: string | undefined;
  let follow = false;
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-c' || a === '--format') format = `${args[++i] ?? ''}\n`;
    else if (a.startsWith('--format=')) format = `${a.slice(9)}\n`;
    else if (a === '--printf') format = args[++i] ?? '';
    else if (a.startsWith('--printf=')) format = a.slice(9);
    else if (a === '-L' || a === '--dereference') follow = true;
    else if (a === '--') files.push(...args.slice(i + 1)), (i = args.length);
    else if (a.startsWith('-') && a !== '-') return fail(1, `stat: unsupported option -- '${a}'\n`);
    else files.push(a);
  }
  if (files.length === 0) return fail(1, `stat: missing operand\nTry 'stat --help' for more information.\n`);
  format ??= '  File: %n\n  Size: %s\nAccess: (%a) Uid: (%u/%U) Gid: (%g/%G)\n';
  const subject = subjectOf(options);
  let out = '';
  let err = '';
  for (const file of files) {
    const loc = g.locate(file, { subject, follow });
    if (loc.error || !loc.stat) {
      err += `stat: cannot statx '${file}': ${ERRNO_TEXT[loc.error ?? 'ENOENT']}\n`;
      continue;
    }
    const st = loc.stat;
    const ids = g.ctIds(loc.guest, st);
    const kind = st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symbolic link' : st.size === 0 ? 'regular empty file' : 'regular file';
    out += format.replace(/%([uUgGanspF%])/g, (_m, c: string) => {
      switch (c) {
        case 'u':
          return String(ids.uid);
        case 'g':
          return String(ids.gid);
        case 'U':
          return userName(g, ids.uid) ?? 'UNKNOWN';
        case 'G':
          return groupName(g, ids.gid) ?? 'UNKNOWN';
        case 'a':
          return (st.mode & 0o7777).toString(8);
        case 'n':
          return file;
        case 's':
          return String(st.size);
        case 'F':
          return kind;
        default:
          return '%';
      }
    });
  }
  return { exit: err ? 1 : 0, stdout: out, stderr: err };
};

// ---------------------------------------------------------------------------
// getent passwd|group [KEY...]

guestPrograms.getent = (g, args) => {
  const [db, ...keys] = args.filter((a) => !a.startsWith('-'));
  if (db !== 'passwd' && db !== 'group') return fail(1, `Unknown database: ${db ?? ''}\n`);
  const entries = db === 'passwd' ? users(g).map((u) => ({ name: u.name, id: u.uid, line: u.line })) : groups(g).map((e) => ({ name: e.name, id: e.gid, line: e.line }));
  if (keys.length === 0) return { exit: 0, stdout: entries.map((e) => `${e.line}\n`).join(''), stderr: '' };
  let out = '';
  let missing = false;
  for (const key of keys) {
    const found = entries.find((e) => e.name === key) ?? (/^\d+$/.test(key) ? entries.find((e) => e.id === Number(key)) : undefined);
    if (found) out += `${found.line}\n`;
    else missing = true;
  }
  return { exit: missing ? 2 : 0, stdout: out, stderr: '' };
};

// ---------------------------------------------------------------------------
// id [-u|-g|-G] [-n] [USER]

guestPrograms.id = (g, args, options) => {
  const flags = args.filter((a) => a.startsWith('-')).join('');
  const name = args.find((a) => !a.startsWith('-'));
  let who: Subject = subjectOf(options);
  if (name !== undefined) {
    const user = lookupUser(g, name);
    if (!user) return fail(1, `id: '${name}': no such user\n`);
    who = { uid: user.uid, gid: user.gid, groups: initGroups(g, user) };
  }
  const byName = flags.includes('n');
  const uname = (uid: number) => (byName ? userName(g, uid) ?? String(uid) : String(uid));
  const gname = (gid: number) => (byName ? groupName(g, gid) ?? String(gid) : String(gid));
  const all = [...new Set([who.gid, ...who.groups])];
  if (flags.includes('u')) return { exit: 0, stdout: `${uname(who.uid)}\n`, stderr: '' };
  if (flags.includes('G')) return { exit: 0, stdout: `${all.map(gname).join(' ')}\n`, stderr: '' };
  if (flags.includes('g')) return { exit: 0, stdout: `${gname(who.gid)}\n`, stderr: '' };
  const label = (id: number, n: string | undefined) => (n ? `${id}(${n})` : String(id));
  const line = `uid=${label(who.uid, userName(g, who.uid))} gid=${label(who.gid, groupName(g, who.gid))} groups=${all.map((id) => label(id, groupName(g, id))).join(',')}`;
  return { exit: 0, stdout: `${line}\n`, stderr: '' };
};

// ---------------------------------------------------------------------------
// setpriv (util-linux): --reuid/--regid with a groups option, then exec

guestPrograms.setpriv = (g, args, options) => {
  const current = subjectOf(options);
  let uid: number | undefined;
  let gid: number | undefined;
  let groupsMode: 'keep' | 'clear' | 'init' | 'list' | undefined;
  let groupList: number[] = [];
  let i = 0;
  const value = (a: string): string | undefined => (a.includes('=') ? a.slice(a.indexOf('=') + 1) : args[++i]);
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-')) break;
    const opt = a.split('=')[0]!;
    if (opt === '--reuid' || opt === '--ruid' || opt === '--euid') {
      const v = value(a) ?? '';
      const user = lookupUser(g, v);
      if (!user && !/^\d+$/.test(v)) return fail(1, `setpriv: failed to parse uid: '${v}'\n`);
      uid = user?.uid ?? Number(v);
    } else if (opt === '--regid' || opt === '--rgid' || opt === '--egid') {
      const v = value(a) ?? '';
      const group = lookupGroup(g, v);
      if (!group && !/^\d+$/.test(v)) return fail(1, `setpriv: failed to parse gid: '${v}'\n`);
      gid = group?.gid ?? Number(v);
    } else if (opt === '--clear-groups') groupsMode = 'clear';
    else if (opt === '--keep-groups') groupsMode = 'keep';
    else if (opt === '--init-groups') groupsMode = 'init';
    else if (opt === '--groups') {
      groupsMode = 'list';
      const list = (value(a) ?? '').split(',').filter(Boolean);
      groupList = [];
      for (const item of list) {
        const group = lookupGroup(g, item);
        if (!group && !/^\d+$/.test(item)) return fail(1, `setpriv: failed to parse gid: '${item}'\n`);
        groupList.push(group?.gid ?? Number(item));
      }
    } else if (opt === '--nnp' || opt === '--no-new-privs' || opt === '--reset-env') continue;
    else return fail(1, `setpriv: unrecognized option '${a}'\nTry 'setpriv --help' for more information.\n`);
  }
  const command = args.slice(i);
  if (gid !== undefined && groupsMode === undefined) return fail(1, 'setpriv: --[re]gid requires --keep-groups, --clear-groups, --init-groups, or --groups\n');
  if (groupsMode === 'init' && uid === undefined) return fail(1, 'setpriv: --init-groups requires --ruid or --reuid\n');
  if (command.length === 0) return fail(1, 'setpriv: No program specified\nTry \'setpriv --help\' for more information.\n');
  let nextGroups = current.groups;
  if (groupsMode === 'clear') nextGroups = [];
  else if (groupsMode === 'list') nextGroups = groupList;
  else if (groupsMode === 'init') {
    const user = users(g).find((u) => u.uid === uid);
    if (!user) return fail(1, `setpriv: uid ${uid} not found, --init-groups requires an user that can be found on the system\n`);
    nextGroups = initGroups(g, user);
  }
  const next: Subject = { uid: uid ?? current.uid, gid: gid ?? current.gid, groups: nextGroups };
  // Changing ids needs CAP_SETUID/CAP_SETGID (container root); ids must exist in the namespace.
  const changing = next.uid !== current.uid || next.gid !== current.gid || groupsMode !== undefined;
  if (changing && current.uid !== 0) return fail(127, `setpriv: ${groupsMode !== undefined ? 'setgroups' : 'setresgid'} failed: Operation not permitted\n`);
  for (const id of [next.gid, ...next.groups]) if (toHost(g.maps, 'g', id) === undefined) return fail(127, `setpriv: ${groupsMode !== undefined && id !== next.gid ? 'setgroups' : 'setresgid'} failed: Invalid argument\n`);
  if (toHost(g.maps, 'u', next.uid) === undefined) return fail(127, 'setpriv: setresuid failed: Invalid argument\n');
  const program = command[0]!;
  const result = runCommand(g, command, { ...options, subject: next });
  // setpriv execs the program itself: a missing one is its own error, not lxc-attach's.
  if (result.exit === 127 && /Failed to exec|Failed to execute/.test(result.stderr)) return fail(127, `setpriv: failed to execute ${path.posix.basename(program)}: No such file or directory\n`);
  if (result.exit === 126 && /Failed to exec|Failed to execute/.test(result.stderr)) return fail(126, `setpriv: failed to execute ${path.posix.basename(program)}: Permission denied\n`);
  return result;
};
