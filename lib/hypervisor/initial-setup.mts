// Setup step 1 (hypervisor_initial_setup.sh): the node's basics. Log
// rotation for Phoenix's log; the Proxmox apt repositories for the release the
// node runs (lib/hypervisor/apt-sources.mts); the host tools Phoenix uses
// (step-cli from Smallstep's repository, samba, libguestfs, yq, chrony, ...);
// the time zone and NTP; and the node's own name in /etc/hosts.
//
// Each part compares first and changes only what differs, so a second run
// changes nothing: no apt-get update unless a source file changed or a package
// is missing, no dist-upgrade unless asked (`--upgrade`), no timedatectl call
// when the zone is already right. What the bash also did and this step does
// not: rewrite /etc/resolv.conf and ping google.com (apt-get update's own
// failure is the check), add the NodeSource repository (node was never
// installed), write interfaces.d/50-vmbr0.cfg (the network step owns the
// bridge), rename the node, and source the DNS, NVIDIA and AppArmor scripts
// (the manager runs those as steps of their own).

import fs from 'node:fs';
import { PhoenixError } from '../core/errors.mts';
import { isDryRun } from '../core/context.mts';
import { readIfExists, writeFileAtomic } from '../core/fs.mts';
import { locateOwnedBlock, ensureOwnedBlock } from '../core/owned-block.mts';
import { info, warn } from '../core/log.mts';
import { query, run } from '../core/runner.mts';
import type { PhoenixOptions } from '../core/env.mts';
import type { ConfigIssue, HypervisorConfig } from '../config/types.mts';
import { downloadOnce } from './download.mts';
import { ensureProxmoxSources, readRelease, SOURCES_DIR } from './apt-sources.mts';
import { aptInstall, hostFile, packageInstalled, unitActiveState, unitEnabled } from './host.mts';
import { fileChange, type SetupContext, type StepResult } from './setup-step.mts';

export const LOGROTATE_FILE = '/etc/logrotate.d/phoenix_hypervisor';
/** The host tools Phoenix's steps and scripts call. Debian's `yq` is kislyuk's python-yq, which swarm-manager's `yq -i -y` needs. */
export const HOST_PACKAGES = ['step-cli', 's-tui', 'samba', 'samba-common-bin', 'smbclient', 'libguestfs-tools', 'yq', 'chrony'] as const;
export const SMALLSTEP_KEY = '/etc/apt/keyrings/smallstep.asc';
export const SMALLSTEP_KEY_URL = 'https://packages.smallstep.com/keys/apt/repo-signing-key.gpg';
export const SMALLSTEP_LIST = `${SOURCES_DIR}/smallstep.list`;
export const HOSTS_MARKERS = { begin: '# BEGIN phoenix: node name', end: '# END phoenix: node name' } as const;
const CHRONY = 'chrony.service';

// ---------------------------------------------------------------- validation (no host access)

/** The node's short name a manifest hostname stands for (the first label of an FQDN). */
export function shortName(hostname: string): string {
  return hostname.split('.')[0] ?? hostname;
}

function knownTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export function validateInitialSetup(config: HypervisorConfig, file: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (config.timezone !== undefined && !knownTimeZone(config.timezone)) {
    issues.push({ file, pointer: '/timezone', message: `'${config.timezone}' is not a known time zone (see \`timedatectl list-timezones\`)` });
  }
  const hostname = config.network?.hostname;
  if (hostname !== undefined && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(shortName(hostname))) {
    issues.push({ file, pointer: '/network/hostname', message: `'${hostname}' does not start with a valid node name (letters, digits and '-', at most 63)` });
  }
  const address = config.network?.interfaces?.address;
  if (address !== undefined && !/^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/.test(address)) {
    issues.push({ file, pointer: '/network/interfaces/address', message: `'${address}' is not an IPv4 address (with an optional /prefix)` });
  }
  return issues;
}

// ---------------------------------------------------------------- log rotation

/** A path as logrotate reads it: quoted when it holds blanks or quotes. */
function logrotatePath(file: string): string {
  return /^[^\s"'{}]+$/.test(file) ? file : `"${file.replace(/"/g, '\\"')}"`;
}

export function logrotateText(logFile: string): string {
  // 0640 root:adm, Debian's convention for logs: Phoenix's log names guests,
  // addresses and commands, which other local users need not read.
  return [
    '# Written by Phoenix (hypervisor_initial_setup.sh); edits are overwritten.',
    `${logrotatePath(logFile)} {`,
    '    daily',
    '    rotate 7',
    '    compress',
    '    delaycompress',
    '    missingok',
    '    notifempty',
    '    create 0640 root adm',
    '}',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------- step-cli's repository

function armoredKey(file: string): string | undefined {
  const head = fs.readFileSync(file).subarray(0, 64).toString('latin1');
  return head.startsWith('-----BEGIN PGP PUBLIC KEY BLOCK-----') ? undefined : 'not an ASCII-armored OpenPGP public key (apt reads a .asc key as armored)';
}

/** Smallstep's key and list file; only when step-cli still has to come from there, or Phoenix already set them up. */
async function ensureSmallstepRepo(options: PhoenixOptions, stepMissing: boolean, changes: string[]): Promise<boolean> {
  const list = hostFile(options, SMALLSTEP_LIST);
  if (!stepMissing && !fs.existsSync(list)) return false;
  let changed = false;
  const key = await downloadOnce({ url: SMALLSTEP_KEY_URL, target: hostFile(options, SMALLSTEP_KEY), check: armoredKey });
  if (key === 'downloaded') {
    changes.push(`downloaded Smallstep's apt key to ${SMALLSTEP_KEY}`);
    changed = true;
  }
  const text = `# Written by Phoenix (hypervisor_initial_setup.sh): step-cli.\ndeb [signed-by=${SMALLSTEP_KEY}] https://packages.smallstep.com/stable/debian debs main\n`;
  const before = changes.length;
  fileChange(changes, writeFileAtomic(list, text, { mode: 0o644 }), SMALLSTEP_LIST, 'Smallstep repository');
  return changed || changes.length > before;
}

// ---------------------------------------------------------------- packages

async function ensurePackages(options: PhoenixOptions, sourcesChanged: boolean, upgrade: boolean, changes: string[]): Promise<void> {
  const missing: string[] = [];
  for (const name of HOST_PACKAGES) if (!(await packageInstalled(name))) missing.push(name);
  const repoChanged = await ensureSmallstepRepo(options, missing.includes('step-cli'), changes);
  if (missing.length > 0) {
    info(`installing ${missing.join(', ')}`);
    await aptInstall(missing);
    changes.push(`installed ${missing.join(' ')}`);
  } else if (sourcesChanged || repoChanged || upgrade) {
    await run({ cmd: 'apt-get', args: ['update', '-q'], env: aptEnv(), timeoutMs: 15 * 60_000 });
    if (!upgrade) changes.push('refreshed the package lists (apt-get update)');
  }
  if (upgrade) await distUpgrade(changes);
}

function aptEnv(): Record<string, string> {
  return { ...(process.env as Record<string, string>), DEBIAN_FRONTEND: 'noninteractive' };
}

/** `apt-get dist-upgrade`, only with --upgrade; a change line only when apt did something. */
async function distUpgrade(changes: string[]): Promise<void> {
  const result = await run({
    cmd: 'apt-get',
    args: ['dist-upgrade', '-y', '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold'],
    env: aptEnv(),
    timeoutMs: 60 * 60_000,
  });
  if (isDryRun()) {
    changes.push('apt-get dist-upgrade (planned)');
    return;
  }
  const summary = /(\d+) upgraded, (\d+) newly installed, (\d+) to remove/.exec(result.stdout);
  if (summary === null) {
    changes.push('ran apt-get dist-upgrade');
    return;
  }
  const [, upgraded, added, removed] = summary;
  if (upgraded !== '0' || added !== '0' || removed !== '0') changes.push(`apt-get dist-upgrade: ${upgraded} upgraded, ${added} newly installed, ${removed} removed`);
}

// ---------------------------------------------------------------- time

async function ensureTimezone(zone: string | undefined, changes: string[]): Promise<void> {
  if (zone === undefined) return;
  const current = (await query({ cmd: 'timedatectl', args: ['show', '-p', 'Timezone', '--value'], quiet: true })).stdout.trim();
  if (current === zone) return;
  await run({ cmd: 'timedatectl', args: ['set-timezone', zone] });
  changes.push(`time zone ${current === '' ? '(unset)' : current} -> ${zone}`);
}

async function ensureChrony(changes: string[]): Promise<void> {
  const enabled = await unitEnabled(CHRONY);
  const active = (await unitActiveState(CHRONY)) === 'active';
  if (enabled && active) return;
  await run({ cmd: 'systemctl', args: ['enable', '--now', CHRONY] });
  changes.push(`${enabled ? '' : 'enabled and '}started ${CHRONY}`);
}

// ---------------------------------------------------------------- the node's name

/** The node's current name: `hostnamectl hostname`, else /etc/hostname. */
export async function currentHostname(options: PhoenixOptions): Promise<string> {
  const result = await query({ cmd: 'hostnamectl', args: ['hostname'], allowFailure: true, quiet: true });
  const fromTool = result.code === 0 ? result.stdout.trim() : '';
  if (fromTool !== '') return shortName(fromTool);
  const fromFile = readIfExists(hostFile(options, '/etc/hostname'))?.toString('utf8').trim() ?? '';
  if (fromFile === '') throw new PhoenixError('cannot tell the node name: `hostnamectl hostname` failed and /etc/hostname is empty');
  return shortName(fromFile);
}

/** Whether /etc/hosts text (Phoenix's block left out) maps `name` to an address. */
export function hostsResolve(text: string, name: string): boolean {
  return text.split('\n').some((line) => {
    const fields = line.replace(/#.*$/, '').trim().split(/\s+/);
    return fields.length > 1 && fields.slice(1).includes(name);
  });
}

/** The node keeps its name; /etc/hosts must resolve it (pmxcfs refuses a node name it cannot resolve). */
async function ensureNodeName(config: HypervisorConfig, options: PhoenixOptions, changes: string[]): Promise<void> {
  const node = await currentHostname(options);
  const wanted = config.network?.hostname;
  if (wanted !== undefined && shortName(wanted) !== node) {
    warn(
      `network.hostname is '${wanted}' but this Proxmox VE node is named '${node}'; the node keeps its name: ` +
        `renaming a node in place breaks /etc/pve/nodes/${node} (its guests' configs) and the cluster. ` +
        `Set network.hostname to '${node}' or remove it; to really rename, follow the Proxmox VE documentation with no guests on the node`,
    );
  }
  const file = hostFile(options, '/etc/hosts');
  const text = readIfExists(file)?.toString('latin1') ?? '';
  const located = locateOwnedBlock(text, HOSTS_MARKERS, '/etc/hosts');
  const outside = located === undefined ? text : located.before + located.after;
  // pmxcfs needs the name on a non-loopback address: the host's own when the manifest gives it.
  const address = config.network?.interfaces?.address?.split('/')[0];
  const lines = hostsResolve(outside, node) ? [] : [`${address ?? '127.0.1.1'} ${node}`];
  if (lines.length > 0 && address === undefined) warn(`/etc/hosts: no address for '${node}' in the manifest (network.interfaces.address); mapping it to 127.0.1.1, which pve-cluster does not accept as the node address`);
  const outcome = ensureOwnedBlock(file, { ...HOSTS_MARKERS, lines, removeWhenEmpty: true, createMode: 0o644 });
  if (outcome !== 'unchanged') changes.push(lines.length > 0 ? `/etc/hosts: ${lines[0]} (the node's own name did not resolve)` : `/etc/hosts: removed Phoenix's entry for ${node} (another line resolves it now)`);
}

// ---------------------------------------------------------------- the step

export async function initialSetup(ctx: SetupContext): Promise<StepResult> {
  const { config, options } = ctx;
  const hv = config.hypervisor;
  const upgrade = (ctx as { upgrade?: boolean }).upgrade === true;
  const changes: string[] = [];

  fileChange(changes, writeFileAtomic(hostFile(options, LOGROTATE_FILE), logrotateText(options.logFile), { mode: 0o644 }), LOGROTATE_FILE, `rotation of ${options.logFile}`);

  const release = readRelease(options);
  info(`node runs Proxmox VE ${release.pve} (Debian ${release.codename})`);
  const sources = await ensureProxmoxSources(options, release);
  changes.push(...sources.changes);

  await ensurePackages(options, sources.changed, upgrade, changes);
  await ensureTimezone(hv.timezone, changes);
  await ensureChrony(changes);
  await ensureNodeName(hv, options, changes);
  return { changes };
}
