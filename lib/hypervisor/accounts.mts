// Steps 10 and 12 of `phoenix setup`: the operator's login (the bash's
// hard-coded `heads`, now `operator_user`) and the admin user (`users`).
// Each is a Linux user (useradd / usermod / groupadd through the runner,
// read back from /etc/passwd, group and shadow under the host root, never
// from `id`), a sudoer through its own checked fragment (sudoers.mts), and a
// Proxmox user <name>@pam with Administrator on `/`.
//
// Unlike the bash: nothing blocks on a prompt without a terminal (the user is
// created locked, and the run says so); a password comes from the manifest
// (a crypt hash, or a root-only file) and reaches `chpasswd` on stdin only;
// it is set once, when the account has none yet, so a second run changes
// nothing; /etc/sudoers is never appended to; the ACL is read in the shape
// `pveum acl list` really prints and set only when missing.

import fs from 'node:fs';
import path from 'node:path';
import type { ConfigIssue, HypervisorConfig } from '../config/types.mts';
import type { PhoenixOptions } from '../core/env.mts';
import { isDryRun } from '../core/context.mts';
import { readIfExists, writeFileAtomic } from '../core/fs.mts';
import { info, warn } from '../core/log.mts';
import { query, run } from '../core/runner.mts';
import { promptPassword, readSecretFile } from './account-secrets.mts';
import { aptInstall, hostFile, packageInstalled } from './host.mts';
import type { SetupContext, StepResult } from './setup-step.mts';
import { ensureSudoersFragment, fragmentPath, fullAccessRule, removeSudoersFragment, sudoersIncludesDir } from './sudoers.mts';

export const DEFAULT_OPERATOR = 'heads';
export const DEFAULT_ADMIN = 'phoenix_admin';
const SUDO_GROUP = 'sudo';

// ---------------------------------------------------------------- the host's account files

export interface HostUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface HostAccounts {
  users: Map<string, HostUser>;
  groups: Map<string, { gid: number; members: string[] }>;
  /** shadow's password field per user. */
  passwords: Map<string, string>;
}

function rows(options: PhoenixOptions, file: string): string[][] {
  const text = readIfExists(hostFile(options, file))?.toString('utf8') ?? '';
  return text.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#')).map((line) => line.split(':'));
}

/** /etc/passwd, group and shadow as they are now (a missing file reads as empty). */
export function readHostAccounts(options: PhoenixOptions): HostAccounts {
  const users = new Map<string, HostUser>();
  for (const f of rows(options, '/etc/passwd')) users.set(f[0]!, { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '', shell: f[6] ?? '' });
  const groups = new Map<string, { gid: number; members: string[] }>();
  for (const f of rows(options, '/etc/group')) groups.set(f[0]!, { gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) });
  const passwords = new Map<string, string>();
  for (const f of rows(options, '/etc/shadow')) passwords.set(f[0]!, f[1] ?? '');
  return { users, groups, passwords };
}

/** A shadow field that holds no password at all (new with useradd, `*`, empty); `!<hash>` is a locked one and counts. */
export function hasNoPassword(field: string | undefined): boolean {
  return field === undefined || /^[!*]*$/.test(field);
}

// ---------------------------------------------------------------- passwords

/** How a new account gets its password. */
export type PasswordPlan =
  | { kind: 'hash'; value: string; from: string }
  | { kind: 'clear'; value: string; from: string }
  | { kind: 'none'; why: string };

function usable(value: string | undefined): value is string {
  return value !== undefined && value !== '' && value !== 'NOT_SET';
}

/** The operator's password: a hash, a file, else a prompt on a terminal, else none (the account stays locked). */
async function operatorPassword(context: SetupContext, name: string): Promise<PasswordPlan> {
  const section = context.config.hypervisor.operator_user ?? {};
  const file = context.config.paths.hypervisor;
  if (usable(section.password_hash)) return { kind: 'hash', value: section.password_hash, from: '/operator_user/password_hash' };
  if (usable(section.password_file)) {
    const value = readSecretFile(context.options, { configFile: file, pointer: '/operator_user/password_file', hostPath: section.password_file });
    return { kind: 'clear', value, from: section.password_file };
  }
  if (context.interactive && !isDryRun()) return { kind: 'clear', value: await promptPassword(`New password for ${name}`), from: 'the terminal' };
  return { kind: 'none', why: `no password configured (set operator_user.password_hash or operator_user.password_file in ${file})${context.interactive ? '' : ' and no terminal to ask on'}` };
}

/** Before any step of `phoenix setup` runs: a password file named for the operator must be readable and root-only. */
export function preflightAccounts(context: SetupContext): void {
  const section = context.config.hypervisor.operator_user ?? {};
  if (usable(section.password_hash) || !usable(section.password_file)) return;
  readSecretFile(context.options, { configFile: context.config.paths.hypervisor, pointer: '/operator_user/password_file', hostPath: section.password_file });
}

function adminPassword(context: SetupContext): PasswordPlan {
  const hash = context.config.hypervisor.users?.password_hash;
  if (usable(hash)) return { kind: 'hash', value: hash, from: '/users/password_hash' };
  return { kind: 'none', why: `users.password_hash is not set in ${context.config.paths.hypervisor}` };
}

// ---------------------------------------------------------------- one Linux user

export interface AccountSpec {
  name: string;
  sudo: boolean;
  password: () => Promise<PasswordPlan>;
}

/**
 * The Linux user, its password (only when it has none yet) and its sudo
 * rights. Returns the user as /etc/passwd has it afterwards (undefined in a
 * dry-run that would create it).
 */
export async function ensureLinuxUser(context: SetupContext, spec: AccountSpec, changes: string[]): Promise<HostUser | undefined> {
  const { options } = context;
  const accounts = readHostAccounts(options);
  const existed = accounts.users.has(spec.name);
  // The password is settled first: a refused password file changes nothing.
  const plan = !existed || hasNoPassword(accounts.passwords.get(spec.name)) ? await spec.password() : undefined;
  if (!existed) await run({ cmd: 'useradd', args: ['-m', '-s', '/bin/bash', spec.name] });
  if (plan !== undefined) {
    if (plan.kind === 'none') {
      if (!existed) changes.push(`created Linux user ${spec.name} with its password locked: ${plan.why}`);
      else info(`Linux user ${spec.name} has no password yet (${plan.why})`);
      if (!existed) warn(`${spec.name} cannot log in with a password until one is set: ${plan.why}`);
    } else {
      // user:secret on stdin; -e takes a crypt hash as it is.
      await run({ cmd: 'chpasswd', args: plan.kind === 'hash' ? ['-e'] : [], input: `${spec.name}:${plan.value}\n`, secrets: [plan.value] });
      changes.push(`${existed ? '' : `created Linux user ${spec.name}; `}set the password of ${spec.name} (from ${plan.from})`);
    }
  }
  if (spec.sudo) await ensureSudoRights(context, spec.name, changes);
  else if (removeSudoersFragment(options, spec.name) === 'removed') changes.push(`removed ${fragmentPath(spec.name)} (sudo_access is not true)`);
  return readHostAccounts(options).users.get(spec.name);
}

async function ensureSudoRights(context: SetupContext, name: string, changes: string[]): Promise<void> {
  const { options } = context;
  const accounts = readHostAccounts(options);
  const group = accounts.groups.get(SUDO_GROUP);
  if (group === undefined) {
    await run({ cmd: 'groupadd', args: [SUDO_GROUP] });
    changes.push(`created group ${SUDO_GROUP}`);
  }
  if (!(group?.members ?? []).includes(name)) {
    await run({ cmd: 'usermod', args: ['-aG', SUDO_GROUP, name] });
    changes.push(`added ${name} to group ${SUDO_GROUP}`);
  }
  // Proxmox VE does not ship sudo; without it the group grants nothing.
  if (sudoersIncludesDir(options) === undefined && !(await packageInstalled('sudo'))) {
    await aptInstall(['sudo']);
    changes.push('installed sudo');
    if (isDryRun()) {
      changes.push(`wrote ${fragmentPath(name)} (${fullAccessRule(name)})`);
      return;
    }
  }
  const outcome = await ensureSudoersFragment(options, name, [fullAccessRule(name)]);
  if (outcome !== 'unchanged') changes.push(`${outcome === 'created' ? 'wrote' : 'updated'} ${fragmentPath(name)} (${fullAccessRule(name)}, checked with visudo)`);
}

// ---------------------------------------------------------------- the Proxmox user

interface PveUserRow {
  userid: string;
}

interface PveAclRow {
  path: string;
  roleid: string;
  type: string;
  ugid: string;
  propagate: number;
}

async function pveumJson<T>(args: string[]): Promise<T[]> {
  const result = await query({ cmd: 'pveum', args: [...args, '--output-format', 'json'], quiet: true });
  const parsed = JSON.parse(result.stdout.trim() === '' ? '[]' : result.stdout) as unknown;
  return Array.isArray(parsed) ? (parsed as T[]) : [];
}

/** <name>@pam exists in Proxmox with Administrator on `/` (propagated), each added only when missing. */
export async function ensurePveAdministrator(name: string, changes: string[]): Promise<void> {
  const userid = `${name}@pam`;
  const users = await pveumJson<PveUserRow>(['user', 'list']);
  if (!users.some((row) => row.userid === userid)) {
    await run({ cmd: 'pveum', args: ['user', 'add', userid] });
    changes.push(`created Proxmox user ${userid}`);
  }
  const acl = await pveumJson<PveAclRow>(['acl', 'list']);
  const granted = acl.some((row) => row.path === '/' && row.type === 'user' && row.ugid === userid && row.roleid === 'Administrator' && Number(row.propagate) === 1);
  if (!granted) {
    await run({ cmd: 'pveum', args: ['acl', 'modify', '/', '--users', userid, '--roles', 'Administrator'] });
    changes.push(`granted ${userid} the Administrator role on /`);
  }
}

// ---------------------------------------------------------------- the SSH key

/** Append the key to ~/.ssh/authorized_keys unless that exact line is there (700/600, owned by the user). */
function ensureAuthorizedKey(options: PhoenixOptions, user: HostUser | undefined, name: string, key: string, changes: string[]): void {
  if (user === undefined) {
    changes.push(`added the SSH key to ~${name}/.ssh/authorized_keys`);
    return;
  }
  const sshDir = path.posix.join(user.home, '.ssh');
  const file = path.posix.join(sshDir, 'authorized_keys');
  const current = readIfExists(hostFile(options, file))?.toString('utf8');
  if (current !== undefined && current.split('\n').some((line) => line.trim() === key.trim())) return;
  if (!isDryRun()) {
    const dir = hostFile(options, sshDir);
    if (!fs.existsSync(dir)) {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      fs.chownSync(dir, user.uid, user.gid);
    }
  }
  const text = `${current ?? ''}${current === undefined || current === '' || current.endsWith('\n') ? '' : '\n'}${key.trim()}\n`;
  writeFileAtomic(hostFile(options, file), text, { mode: 0o600, uid: user.uid, gid: user.gid });
  changes.push(`added the SSH key to ${file}`);
}

// ---------------------------------------------------------------- the steps

/** Step 10: the operator's login (operator_user, default `heads`): sudoer and Proxmox Administrator. */
export async function createHeadsUser(context: SetupContext): Promise<StepResult> {
  const name = context.config.hypervisor.operator_user?.username ?? DEFAULT_OPERATOR;
  const changes: string[] = [];
  await ensureLinuxUser(context, { name, sudo: true, password: () => operatorPassword(context, name) }, changes);
  await ensurePveAdministrator(name, changes);
  return { changes };
}

/** Step 12: the admin user of `users` (default phoenix_admin): sudo when asked, Proxmox Administrator, SSH key. */
export async function createAdminUser(context: SetupContext): Promise<StepResult> {
  const section = context.config.hypervisor.users ?? {};
  const name = section.username ?? DEFAULT_ADMIN;
  const changes: string[] = [];
  const user = await ensureLinuxUser(context, { name, sudo: section.sudo_access === true, password: async () => adminPassword(context) }, changes);
  await ensurePveAdministrator(name, changes);
  if (section.ssh_public_key !== undefined && section.ssh_public_key.trim() !== '') ensureAuthorizedKey(context.options, user, name, section.ssh_public_key, changes);
  return { changes };
}

// ---------------------------------------------------------------- the manifest alone

const CRYPT_HASH = /^\$[0-9a-z]+\$\S+$/;

/** What is wrong with the account sections, without looking at the host. */
export function validateAccounts(config: HypervisorConfig, file: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const operator = config.operator_user ?? {};
  const admin = config.users ?? {};
  const operatorName = operator.username ?? DEFAULT_OPERATOR;
  const adminName = admin.username ?? DEFAULT_ADMIN;
  if (operatorName === 'root') issues.push({ file, pointer: '/operator_user/username', message: 'root is not an account Phoenix creates; name another user' });
  if (adminName === 'root') issues.push({ file, pointer: '/users/username', message: 'root is not an account Phoenix creates; name another user' });
  if (operatorName === adminName) {
    issues.push({ file, pointer: '/users/username', message: `'${adminName}' is also operator_user.username: one account, two password and sudo settings; give the admin user another name` });
  }
  if (usable(operator.password_hash) && usable(operator.password_file)) {
    issues.push({ file, pointer: '/operator_user/password_file', message: 'both password_hash and password_file are set; keep one' });
  }
  if (usable(operator.password_hash) && !CRYPT_HASH.test(operator.password_hash)) {
    issues.push({ file, pointer: '/operator_user/password_hash', message: "not a crypt(3) hash ('$y$…', '$6$…'): a clear-text password here would become the hash itself; use mkpasswd, or password_file" });
  }
  if (usable(admin.password_hash) && !CRYPT_HASH.test(admin.password_hash)) {
    issues.push({ file, pointer: '/users/password_hash', message: "not a crypt(3) hash ('$y$…', '$6$…') nor NOT_SET: a clear-text password here would become the hash itself; use mkpasswd" });
  }
  return issues;
}
