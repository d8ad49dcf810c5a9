// Step 11 of `phoenix setup`: the Samba shares of the manifest's `samba`
// section. Samba is installed when missing; the Samba user (`samba.user`,
// default the operator user) gets its password once, when Samba does not
// know it yet, from `samba.password_file` (root-only) or `samba.password`
// (accepted with a warning), or from a prompt on a terminal; it reaches
// `smbpasswd -s -a` on stdin only. Share directories are created when
// missing (owner the Samba user, mode 0770) and never chmodded afterwards.
//
// /etc/samba/smb.conf stays the distribution's and the operator's: Phoenix
// writes only its own block at the end (lib/core/owned-block.mts), holding a
// `[global]` with the manifest's workgroup (a later [global] overrides the
// earlier one's values, which `testparm` confirms) and one section per share,
// with the share's `options` ("k=v k=v") as smb.conf parameters. The whole
// candidate file is checked with the real `testparm -s` before it is
// installed; an unknown parameter from the manifest is refused. smbd and
// nmbd are restarted only when the file changed, and must be active after.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ConfigIssue, HypervisorConfig, SambaShare } from '../config/types.mts';
import { isDryRun } from '../core/context.mts';
import { ConfigError, PhoenixError } from '../core/errors.mts';
import { readIfExists } from '../core/fs.mts';
import { info, warn } from '../core/log.mts';
import { ensureOwnedBlock, replaceOwnedBlock } from '../core/owned-block.mts';
import { addSecret } from '../core/redact.mts';
import { query, run } from '../core/runner.mts';
import { DEFAULT_OPERATOR, readHostAccounts } from './accounts.mts';
import { promptPassword, readSecretFile } from './account-secrets.mts';
import { aptInstall, hostFile, packageInstalled, unitActiveState } from './host.mts';
import type { SetupContext, StepResult } from './setup-step.mts';

export const SMB_CONF = '/etc/samba/smb.conf';
export const SAMBA_PACKAGES = ['samba', 'samba-common-bin', 'smbclient'];
export const SAMBA_UNITS = ['smbd', 'nmbd'];
export const BLOCK = { begin: '# BEGIN phoenix: samba shares', end: '# END phoenix: samba shares' };
const RESERVED_SECTIONS = ['global', 'homes', 'printers', 'print$'];

/** The Samba user: samba.user, else the operator user, else heads. */
export function sambaUser(config: HypervisorConfig): string {
  return config.samba?.user ?? config.operator_user?.username ?? DEFAULT_OPERATOR;
}

// ---------------------------------------------------------------- share options

/** A parameter name as Samba compares them: case, blanks and '_' do not count (`create_mask` = `create mask`). */
function canonical(key: string): string {
  const bare = key.toLowerCase().replace(/[\s_]/g, '');
  const synonyms: Record<string, string> = { browseable: 'browsable', writeable: 'writable', writeok: 'writable', readonly: 'writable', public: 'guestok' };
  return synonyms[bare] ?? bare;
}

export interface ShareOption {
  key: string;
  value: string;
}

/** "k=v k=v" → parameters; a word that is not k=v is an error message. */
export function parseShareOptions(text: string | undefined): { options: ShareOption[]; errors: string[] } {
  const options: ShareOption[] = [];
  const errors: string[] = [];
  for (const word of (text ?? '').split(/\s+/).filter(Boolean)) {
    const m = /^([A-Za-z][A-Za-z0-9_]*)=(.*)$/.exec(word);
    if (!m) {
      errors.push(`'${word}' is not key=value (parameters are separated by blanks; write a name with blanks using '_', such as create_mask=0770)`);
      continue;
    }
    const key = m[1]!.replace(/_/g, ' ');
    if (canonical(key) === 'path') errors.push("'path' comes from the share's own path field");
    else if (m[2] === '') errors.push(`'${word}' has no value`);
    else options.push({ key, value: m[2]! });
  }
  return { options, errors };
}

// ---------------------------------------------------------------- the block

function yesNo(value: boolean): string {
  return value ? 'yes' : 'no';
}

/** One share's section: the bash's parameters, then the share's own options (which replace a generated one of the same name). */
export function shareSection(share: SambaShare): string[] {
  const generated: ShareOption[] = [
    { key: 'path', value: `/${share.path}` },
    { key: 'writable', value: yesNo(share.read_only !== true) },
    { key: 'browsable', value: yesNo(share.browsable !== false) },
    { key: 'guest ok', value: yesNo(share.guest_ok === true) },
    ...(share.valid_users !== undefined && share.valid_users.length > 0 ? [{ key: 'valid users', value: share.valid_users.join(', ') }] : []),
    { key: 'create mask', value: '0770' },
    { key: 'directory mask', value: '0770' },
    { key: 'force create mode', value: '0770' },
    { key: 'force directory mode', value: '0770' },
  ];
  const own = parseShareOptions(share.options).options;
  const overridden = new Set(own.map((o) => canonical(o.key)));
  return [`[${share.name}]`, ...[...generated.filter((g) => !overridden.has(canonical(g.key))), ...own].map((p) => `   ${p.key} = ${p.value}`)];
}

/** The lines of Phoenix's block: the workgroup (when the manifest names one) and the shares. */
export function sambaBlockLines(config: HypervisorConfig): string[] {
  const shares = config.samba?.shares ?? [];
  const workgroup = config.network?.workgroup;
  if (shares.length === 0 && workgroup === undefined) return [];
  const lines = ['# Written by phoenix setup from the samba section of the hypervisor manifest; edit that, not this block.'];
  if (workgroup !== undefined) lines.push('[global]', `   workgroup = ${workgroup}`);
  for (const share of shares) lines.push('', ...shareSection(share));
  return lines;
}

// ---------------------------------------------------------------- testparm

export interface TestparmResult {
  checked: boolean;
  /** Effective global parameters testparm printed (lower-case names). */
  globals: Record<string, string>;
  unknown: string[];
}

/** `testparm -s` on a private copy of `text` (one character per byte); throws with testparm's words when Samba cannot load it. */
export async function checkWithTestparm(text: string): Promise<TestparmResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phoenix-smbconf-'));
  const file = path.join(dir, 'smb.conf');
  try {
    fs.writeFileSync(file, Buffer.from(text, 'latin1'), { mode: 0o600 });
    const result = await query({ cmd: 'testparm', args: ['-s', file], allowFailure: true, quiet: true });
    if (result.code === 127) return { checked: false, globals: {}, unknown: [] };
    const said = result.stderr.split(file).join(SMB_CONF);
    if (result.code !== 0) throw new PhoenixError(`testparm cannot load the new ${SMB_CONF}; nothing was changed: ${said.trim().split('\n').filter((l) => !/^Load smb config|^Weak crypto/.test(l)).join(' | ')}`);
    const unknown = [...said.matchAll(/Unknown parameter encountered: "([^"]*)"/g)].map((m) => m[1]!);
    const globals: Record<string, string> = {};
    let inGlobal = false;
    for (const line of result.stdout.split('\n')) {
      const section = /^\[(.*)\]\s*$/.exec(line);
      if (section) inGlobal = section[1]!.toLowerCase() === 'global';
      else if (inGlobal) {
        const m = /^\s+([^=]+?)\s*=\s*(.*)$/.exec(line);
        if (m) globals[m[1]!.toLowerCase()] = m[2]!;
      }
    }
    return { checked: true, globals, unknown };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Refuse unknown parameters that come from the manifest (the operator's own are only warned about). */
function refuseUnknown(config: HypervisorConfig, file: string, unknown: readonly string[]): void {
  const shares = config.samba?.shares ?? [];
  for (const name of unknown) {
    const index = shares.findIndex((share) => parseShareOptions(share.options).options.some((o) => canonical(o.key) === canonical(name)));
    if (index >= 0) throw new ConfigError(file, `/samba/shares/${index}/options`, `testparm does not know the smb.conf parameter '${name}'; nothing was changed`, 'see man smb.conf for the parameter names');
    warn(`${SMB_CONF}: testparm does not know the parameter '${name}' (outside Phoenix's block; left as it is)`);
  }
}

// ---------------------------------------------------------------- the step

async function sambaPassword(context: SetupContext, user: string): Promise<{ value: string; from: string }> {
  const samba = context.config.hypervisor.samba ?? {};
  const file = context.config.paths.hypervisor;
  if (samba.password_file !== undefined) {
    return { value: readSecretFile(context.options, { configFile: file, pointer: '/samba/password_file', hostPath: samba.password_file }), from: samba.password_file };
  }
  if (samba.password !== undefined) {
    return { value: samba.password, from: '/samba/password' };
  }
  if (context.interactive && !isDryRun()) return { value: await promptPassword(`New Samba password for ${user}`), from: 'the terminal' };
  throw new ConfigError(file, '/samba/password_file', `Samba does not know ${user} yet and no password is configured${context.interactive ? '' : ' (and there is no terminal to ask on)'}; nothing was changed`, 'name a root-owned file of mode 0600 holding the password in samba.password_file');
}

async function sambaKnows(user: string, installed: boolean): Promise<boolean> {
  if (!installed) return false;
  const result = await query({ cmd: 'pdbedit', args: ['-L'], quiet: true });
  return result.stdout.split('\n').some((line) => line.split(':')[0] === user);
}

/**
 * Before any step of `phoenix setup` runs: a Samba user that still needs a
 * password must have one to get (a readable root-only file, the manifest,
 * or a terminal), so a missing one stops the run with nothing changed.
 */
export async function preflightSamba(context: SetupContext): Promise<void> {
  const hv = context.config.hypervisor;
  if (hv.samba === undefined || (context.interactive && hv.samba.password_file === undefined)) return;
  const user = sambaUser(hv);
  if (await sambaKnows(user, await packageInstalled('samba'))) return;
  await sambaPassword(context, user);
}

export async function setupSamba(context: SetupContext): Promise<StepResult> {
  const { config, options } = context;
  const hv = config.hypervisor;
  const shares = hv.samba?.shares ?? [];
  if (hv.samba === undefined) return { changes: [], skipped: 'no samba section in the hypervisor manifest' };
  const file = config.paths.hypervisor;
  const changes: string[] = [];
  const user = sambaUser(hv);
  if (hv.samba.password !== undefined) {
    addSecret(hv.samba.password);
    warn(`${file} at /samba/password: the Samba password is in the manifest in clear text; put it in a root-only file (mode 0600) named by samba.password_file${hv.samba.password_file === undefined ? '' : ' (password_file wins; delete the inline value)'}`);
  }

  // Everything that can refuse does so before anything changes.
  const owner = readHostAccounts(options).users.get(user);
  if (owner === undefined) {
    const message = `the Linux user ${user} (samba.user) does not exist; create it first (operator_user, step 10 create_heads_user, or useradd)`;
    if (!isDryRun()) throw new ConfigError(file, hv.samba.user === undefined ? '/samba' : '/samba/user', message);
    warn(`${message}; a real run would stop here`);
  }
  let installed = await packageInstalled('samba');
  const known = await sambaKnows(user, installed);
  const password = known ? undefined : await sambaPassword(context, user);

  if (!installed) {
    await aptInstall(SAMBA_PACKAGES);
    changes.push(`installed ${SAMBA_PACKAGES.join(', ')}`);
    installed = !isDryRun();
  }

  // The new smb.conf, checked whole before any account, directory or file changes.
  const conf = hostFile(options, SMB_CONF);
  const current = readIfExists(conf)?.toString('latin1') ?? '';
  const lines = sambaBlockLines(hv);
  // As ensureOwnedBlock sees them: one character per byte, so the comparison and the check see the bytes it writes.
  const asBytes = lines.map((line) => Buffer.from(line, 'utf8').toString('latin1'));
  const candidate = replaceOwnedBlock(current, { ...BLOCK, lines: asBytes, removeWhenEmpty: true }, conf);
  if (candidate !== current) {
    const check = await checkWithTestparm(candidate);
    if (!check.checked) warn(`testparm is not installed: the new ${SMB_CONF} is not checked before it is installed`);
    refuseUnknown(hv, file, check.unknown);
    const wanted = hv.network?.workgroup;
    const effective = check.globals.workgroup ?? 'WORKGROUP';
    if (check.checked && wanted !== undefined && effective.toUpperCase() !== wanted.toUpperCase()) {
      throw new PhoenixError(`${SMB_CONF}: the workgroup Samba would use is ${effective}, not network.workgroup ${wanted}; nothing was changed`);
    }
  }

  if (!known && password !== undefined) {
    await run({ cmd: 'smbpasswd', args: ['-s', '-a', user], input: `${password.value}\n${password.value}\n`, secrets: [password.value] });
    changes.push(`added ${user} to Samba's password database (password from ${password.from})`);
  }

  for (const share of shares) shareDirectory(context, share, owner?.uid, owner?.gid, changes);

  if (candidate !== current) {
    const outcome = ensureOwnedBlock(conf, { ...BLOCK, lines, removeWhenEmpty: true, createMode: 0o644 });
    if (outcome !== 'unchanged') changes.push(`${outcome === 'created' ? 'wrote' : 'updated'} Phoenix's block in ${SMB_CONF} (${shares.length} share(s)${hv.network?.workgroup ? `, workgroup ${hv.network.workgroup}` : ''})`);
    await run({ cmd: 'systemctl', args: ['restart', ...SAMBA_UNITS] });
    changes.push(`restarted ${SAMBA_UNITS.join(' and ')}`);
  }
  if (installed && !isDryRun()) await ensureActive(changes);
  return { changes };
}

/** `/<path>` created when missing, owned by the Samba user, mode 0770; an existing one is only reported. */
function shareDirectory(context: SetupContext, share: SambaShare, uid: number | undefined, gid: number | undefined, changes: string[]): void {
  const hostPath = `/${share.path}`;
  const dir = hostFile(context.options, hostPath);
  const stat = fs.statSync(dir, { throwIfNoEntry: false });
  if (stat !== undefined) {
    if (!stat.isDirectory()) throw new PhoenixError(`share ${share.name}: ${hostPath} exists and is not a directory`);
    const mode = stat.mode & 0o7777;
    if ((uid !== undefined && stat.uid !== uid) || mode !== 0o770) {
      info(`share ${share.name}: ${hostPath} exists (owner uid ${stat.uid}, mode ${mode.toString(8)}); its owner and mode are left as they are`);
    }
    return;
  }
  changes.push(`created ${hostPath} for share ${share.name} (mode 0770)`);
  if (isDryRun()) return;
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  fs.chmodSync(dir, 0o770);
  if (uid !== undefined && gid !== undefined) fs.chownSync(dir, uid, gid);
}

async function ensureActive(changes: string[]): Promise<void> {
  const inactive: string[] = [];
  for (const unit of SAMBA_UNITS) if ((await unitActiveState(unit)) !== 'active') inactive.push(unit);
  if (inactive.length > 0) {
    await run({ cmd: 'systemctl', args: ['start', ...inactive] });
    changes.push(`started ${inactive.join(' and ')}`);
    for (const unit of inactive) {
      if ((await unitActiveState(unit)) !== 'active') throw new PhoenixError(`${unit} is not active after its start`, { hint: `journalctl -u ${unit}` });
    }
  }
}

// ---------------------------------------------------------------- the manifest alone

/** What is wrong with the samba section, without looking at the host. */
export function validateSamba(config: HypervisorConfig, file: string): ConfigIssue[] {
  const samba = config.samba;
  if (samba === undefined) return [];
  const issues: ConfigIssue[] = [];
  if (samba.password !== undefined && samba.password_file !== undefined) {
    issues.push({ file, pointer: '/samba/password', message: 'both password and password_file are set; delete the clear-text password' });
  }
  const seen = new Map<string, number>();
  (samba.shares ?? []).forEach((share, i) => {
    const at = `/samba/shares/${i}`;
    const lower = share.name.toLowerCase();
    // Section names are case-insensitive in smb.conf.
    if (RESERVED_SECTIONS.includes(lower)) issues.push({ file, pointer: `${at}/name`, message: `[${share.name}] is a section Samba reserves; choose another share name` });
    if (seen.has(lower)) issues.push({ file, pointer: `${at}/name`, message: `share '${share.name}' is also /samba/shares/${seen.get(lower)}; share names are case-insensitive` });
    else seen.set(lower, i);
    if (share.path.split('/').some((part) => part === '..' || part === '.')) issues.push({ file, pointer: `${at}/path`, message: "'.' and '..' are not allowed in a share path" });
    for (const message of parseShareOptions(share.options).errors) issues.push({ file, pointer: `${at}/options`, message });
    (share.valid_users ?? []).forEach((name, j) => {
      if ((share.valid_users ?? []).indexOf(name) !== j) issues.push({ file, pointer: `${at}/valid_users/${j}`, message: `'${name}' is listed twice` });
    });
  });
  return issues;
}
