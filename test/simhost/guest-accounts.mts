// Users and groups of a simulated guest, from its own /etc/passwd and
// /etc/group (what NSS "files" answers inside the container).

import fs from 'node:fs';

import type { GuestFs } from './guestview.mts';

export interface UserEntry {
  name: string;
  uid: number;
  gid: number;
  line: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
  line: string;
}

function lines(g: GuestFs, file: string): string[] {
  try {
    return fs.readFileSync(g.resolve(file), 'utf8').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
  } catch {
    return [];
  }
}

export function users(g: GuestFs): UserEntry[] {
  return lines(g, '/etc/passwd')
    .map((line) => line.split(':'))
    .filter((f) => f.length >= 4 && /^\d+$/.test(f[2]!) && /^\d+$/.test(f[3]!))
    .map((f) => ({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), line: f.join(':') }));
}

export function groups(g: GuestFs): GroupEntry[] {
  return lines(g, '/etc/group')
    .map((line) => line.split(':'))
    .filter((f) => f.length >= 3 && /^\d+$/.test(f[2]!))
    .map((f) => ({ name: f[0]!, gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean), line: f.join(':') }));
}

/** A user by name, or by number when no user has that name (as getpwnam then getpwuid). */
export function lookupUser(g: GuestFs, key: string): UserEntry | undefined {
  const all = users(g);
  return all.find((u) => u.name === key) ?? (/^\d+$/.test(key) ? all.find((u) => u.uid === Number(key)) : undefined);
}

export function lookupGroup(g: GuestFs, key: string): GroupEntry | undefined {
  const all = groups(g);
  return all.find((e) => e.name === key) ?? (/^\d+$/.test(key) ? all.find((e) => e.gid === Number(key)) : undefined);
}

export function userName(g: GuestFs, uid: number): string | undefined {
  return users(g).find((u) => u.uid === uid)?.name;
}

export function groupName(g: GuestFs, gid: number): string | undefined {
  return groups(g).find((e) => e.gid === gid)?.name;
}

/** initgroups(3): the login group plus every group listing the user as a member. */
export function initGroups(g: GuestFs, user: UserEntry): number[] {
  const out = new Set<number>([user.gid]);
  for (const e of groups(g)) if (e.members.includes(user.name)) out.add(e.gid);
  return [...out];
}
