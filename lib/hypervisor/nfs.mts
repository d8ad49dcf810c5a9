// Setup step 5 (hypervisor_feature_setup_nfs) and hypervisor-manager's
// wait_for_nfs_ready: the host's NFS server, its exports, and the Proxmox
// NFS storages on them.
//
// - nfs-kernel-server and nfs-common are installed only when dpkg says one
//   is missing.
// - /etc/exports: only Phoenix's block changes (lib/core/owned-block.mts);
//   the operator's lines stay byte for byte, the original is kept once as
//   /etc/exports.phoenix-orig. The bash truncated the file on every run
//   after a timestamped copy.
// - Export directories that are missing are created root-owned 0755; an
//   existing one keeps its owner and mode (the bash made every export
//   nobody:nogroup 0777 on every run).
// - `exportfs -ra` only when the block changed; nfs-server restarted only when
//   NEED_STATD changed, started when it is not running.
// - Then a bounded wait (wait_for_nfs_ready: 120 s, PHOENIX_NFS_WAIT_SECONDS)
//   until `showmount -e` lists every export, and the nfs storages that are
//   missing (storages.mts, shared with the ZFS step).

import fs from 'node:fs';
import { PhoenixError, ConfigError } from '../core/errors.mts';
import { isDryRun } from '../core/context.mts';
import { info } from '../core/log.mts';
import { ensureOwnedBlock, locateOwnedBlock } from '../core/owned-block.mts';
import { query, run, sleep } from '../core/runner.mts';
import { onHost } from '../guest/hostdirs.mts';
import type { ConfigIssue, HypervisorConfig, NfsExport } from '../config/types.mts';
import { aptInstall, packageInstalled, systemctl, unitActiveState } from './host.mts';
import { desiredStorages, duplicateStorageIds, nfsServerAddress, reconcileStorages } from './storages.mts';
import type { SetupContext, StepResult } from './setup-step.mts';

export const EXPORTS_FILE = '/etc/exports';
export const NFS_COMMON_DEFAULTS = '/etc/default/nfs-common';
export const NFS_PACKAGES = ['nfs-kernel-server', 'nfs-common'];
export const NFS_UNIT = 'nfs-server.service';
export const EXPORTS_BLOCK = { begin: '# BEGIN phoenix: nfs.exports', end: '# END phoenix: nfs.exports' };
const STATD_BLOCK = { begin: '# BEGIN phoenix: NFS locking', end: '# END phoenix: NFS locking' };
/** wait_for_nfs_ready's limit. */
export const NFS_WAIT_SECONDS = 120;

/** Export options of exports(5) (nfs-utils 2.6), the ones taking a value with "=". */
const FLAG_OPTIONS = new Set([
  'secure', 'insecure', 'rw', 'ro', 'async', 'sync', 'wdelay', 'no_wdelay', 'hide', 'nohide', 'crossmnt', 'nocrossmnt',
  'subtree_check', 'no_subtree_check', 'insecure_locks', 'no_auth_nlm', 'secure_locks', 'auth_nlm', 'no_acl', 'acl',
  'root_squash', 'no_root_squash', 'all_squash', 'no_all_squash', 'mountpoint', 'mp', 'pnfs', 'no_pnfs', 'security_label',
  'nordirplus', 'sign_fh',
]);
const VALUE_OPTIONS = new Set(['anonuid', 'anongid', 'fsid', 'sec', 'refer', 'replicas', 'mountpoint', 'mp', 'xprtsec', 'squash_uids', 'squash_gids', 'reexport']);

/** A word of /etc/exports: characters outside a safe set as exports(5)'s backslash + three octal digits. */
export function exportsWord(text: string): string {
  return [...Buffer.from(text, 'utf8')].map((b) => {
    const c = String.fromCharCode(b);
    return /[A-Za-z0-9/._+:@~-]/.test(c) ? c : `\\${b.toString(8).padStart(3, '0')}`;
  }).join('');
}

/** One export line: `<path> <client>(<options>) …`, each client with all the options, as the bash wrote it. */
export function exportLine(ex: NfsExport): string {
  const options = (ex.options ?? []).join(',');
  return [exportsWord(ex.path), ...ex.clients.map((c) => (options === '' ? c : `${c}(${options})`))].join(' ');
}

/** The manifest's nfs section checked without the host. */
export function validateNfs(config: HypervisorConfig, file: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const issue = (pointer: string, message: string) => issues.push({ file, pointer, message });
  const mountpoints = (config.zfs?.datasets ?? []).map((ds) => `/${ds.pool}/${ds.name}`);
  const paths = new Map<string, string>();
  (config.nfs?.exports ?? []).forEach((ex, i) => {
    const at = `/nfs/exports/${i}`;
    if (typeof ex.path !== 'string' || !ex.path.startsWith('/')) {
      issue(`${at}/path`, 'an export needs an absolute path');
      return;
    }
    if (paths.has(ex.path)) issue(`${at}/path`, `${ex.path} is already exported at ${paths.get(ex.path)}`);
    else paths.set(ex.path, at);
    if (!mountpoints.some((mp) => ex.path === mp || ex.path.startsWith(`${mp}/`))) {
      issue(`${at}/path`, `${ex.path} lies in no dataset of zfs.datasets: it would be exported from the root file system`);
    }
    if (!Array.isArray(ex.clients) || ex.clients.length === 0) issue(`${at}/clients`, 'an export needs at least one client');
    else ex.clients.forEach((c, j) => {
      if (typeof c !== 'string' || c === '' || /[\s(),]/.test(c)) issue(`${at}/clients/${j}`, `'${String(c)}' is not an NFS client (a host, address, network or *)`);
    });
    (ex.options ?? []).forEach((o, j) => {
      const [name, value] = o.includes('=') ? [o.slice(0, o.indexOf('=')), o.slice(o.indexOf('=') + 1)] : [o, undefined];
      const known = value === undefined ? FLAG_OPTIONS.has(name) : VALUE_OPTIONS.has(name) && value !== '';
      if (!known) issue(`${at}/options/${j}`, `'${o}' is not an export option of exports(5); exportfs would refuse the whole file`);
    });
  });
  issues.push(...duplicateStorageIds(config, file, 'nfs'));
  return issues;
}

// ---------------------------------------------------------------- the server

/** The NEED_STATD value the file sets outside Phoenix's block (the last assignment, as the shell reads it). */
function statdOutsideBlock(text: string, file: string): string | undefined {
  const located = locateOwnedBlock(text, STATD_BLOCK, file);
  const outside = located === undefined ? text : `${located.before}${located.after}`;
  let value: string | undefined;
  for (const m of outside.matchAll(/^\s*NEED_STATD=["']?([^"'\s#]*)/gm)) value = m[1];
  return value;
}

function ensureStatd(hostRoot: string, changes: string[]): boolean {
  const file = onHost(hostRoot, NFS_COMMON_DEFAULTS);
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'latin1') : '';
  // Needed only where the file does not already say yes by itself.
  const lines = statdOutsideBlock(text, file) === 'yes' ? [] : ['NEED_STATD=yes'];
  const outcome = ensureOwnedBlock(file, { ...STATD_BLOCK, lines, removeWhenEmpty: true, createMode: 0o644 });
  if (outcome === 'unchanged') return false;
  changes.push(`${lines.length > 0 ? 'set NEED_STATD=yes in' : 'removed Phoenix\'s NEED_STATD from'} ${NFS_COMMON_DEFAULTS}`);
  return true;
}

function ensureExportDirs(hostRoot: string, exports: readonly NfsExport[], changes: string[]): void {
  for (const ex of exports) {
    const dir = onHost(hostRoot, ex.path);
    if (fs.existsSync(dir)) continue;
    if (!isDryRun()) {
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
      fs.chmodSync(dir, 0o755);
    }
    changes.push(`created ${ex.path} (root, 0755)`);
  }
}

// ---------------------------------------------------------------- wait_for_nfs_ready

/** The paths of `showmount -e` output: each export line starts with the path, followed by white space. */
export function shownExports(output: string): Set<string> {
  return new Set(output.split('\n').slice(1).map((line) => /^(\S+)\s/.exec(line)?.[1]).filter((p): p is string => p !== undefined));
}

/** Poll `showmount -e <server>` until every path is listed; a bounded wait (PHOENIX_NFS_WAIT_SECONDS, default 120 s). */
export async function waitForNfsExports(server: string, paths: readonly string[], pollIntervalMs: number): Promise<void> {
  const seconds = Number(process.env.PHOENIX_NFS_WAIT_SECONDS ?? NFS_WAIT_SECONDS);
  const deadline = Date.now() + (Number.isFinite(seconds) && seconds >= 0 ? seconds : NFS_WAIT_SECONDS) * 1000;
  let last = '';
  for (;;) {
    const result = await query({ cmd: 'showmount', args: ['-e', server], allowFailure: true, quiet: true, timeoutMs: 30_000 });
    const shown = result.code === 0 ? shownExports(result.stdout) : new Set<string>();
    const missing = paths.filter((p) => !shown.has(p));
    if (missing.length === 0) return;
    last = result.code === 0 ? `not listed: ${missing.join(', ')}` : `showmount exited ${result.code}: ${result.stderr.trim()}`;
    if (Date.now() + pollIntervalMs > deadline) break;
    await sleep(pollIntervalMs);
  }
  throw new PhoenixError(`the NFS server ${server} does not export what /etc/exports says after ${seconds} s (${last})`, { hint: `check 'exportfs -v' and 'systemctl status ${NFS_UNIT}'` });
}

// ---------------------------------------------------------------- the step

export async function setupNfs(context: SetupContext): Promise<StepResult> {
  const config = context.config.hypervisor;
  const file = context.config.paths.hypervisor;
  const hostRoot = context.options.hostRoot;
  const exports = config.nfs?.exports ?? [];
  const issues = validateNfs(config, file);
  if (issues.length > 0) {
    const [first, ...rest] = issues;
    throw new ConfigError(file, first!.pointer, `${first!.message}${rest.map((r) => `\n  ${r.pointer}: ${r.message}`).join('')}`, 'nothing was changed');
  }
  const exportsFile = onHost(hostRoot, EXPORTS_FILE);
  if (exports.length === 0) {
    // Nothing to export: only a block left by an earlier run is taken out.
    const outcome = ensureOwnedBlock(exportsFile, { ...EXPORTS_BLOCK, lines: [], removeWhenEmpty: true });
    if (outcome === 'unchanged') return { changes: [], skipped: 'the manifest has no nfs exports' };
    await run({ cmd: 'exportfs', args: ['-ra'] });
    return { changes: [`removed Phoenix's exports from ${EXPORTS_FILE}`] };
  }
  const changes: string[] = [];
  const missing: string[] = [];
  for (const name of NFS_PACKAGES) if (!(await packageInstalled(name))) missing.push(name);
  if (missing.length > 0) {
    await aptInstall(missing);
    changes.push(`installed ${missing.join(', ')}`);
  }
  const statdChanged = ensureStatd(hostRoot, changes);
  ensureExportDirs(hostRoot, exports, changes);
  const outcome = ensureOwnedBlock(exportsFile, { ...EXPORTS_BLOCK, lines: exports.map(exportLine), createMode: 0o644 });
  if (outcome !== 'unchanged') {
    changes.push(`${outcome === 'created' ? 'created' : 'updated'} ${EXPORTS_FILE} (${exports.length} export(s) in Phoenix's block)`);
    await run({ cmd: 'exportfs', args: ['-ra'] });
  }
  if (statdChanged) {
    await systemctl('restart', NFS_UNIT);
    changes.push(`restarted ${NFS_UNIT}`);
  } else if ((await unitActiveState(NFS_UNIT)) !== 'active') {
    await systemctl('start', NFS_UNIT);
    changes.push(`started ${NFS_UNIT}`);
  }
  const server = nfsServerAddress(config);
  if (isDryRun() && changes.length > 0) info(`DRY-RUN: would wait for ${server} to export ${exports.map((e) => e.path).join(', ')}`);
  else await waitForNfsExports(server, exports.map((e) => e.path), context.options.pollIntervalMs);
  changes.push(...(await reconcileStorages(desiredStorages(config).filter((s) => s.owner === 'nfs'), context.options, file)));
  return { changes };
}
