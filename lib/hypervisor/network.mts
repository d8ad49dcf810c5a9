// Setup step 2 (hypervisor_feature_setup_macvlan): the host's bridges and
// VLAN interfaces in /etc/network/interfaces, applied with `ifreload -a`.
//
// Ownership: Phoenix writes its stanzas inside a marked block
// (lib/core/owned-block.mts) and leaves every other byte of the file alone,
// so the operator's own stanzas (a second NIC, a bond, a Wi-Fi card) stay.
// A fresh Proxmox node already defines the management bridge and its NIC
// outside any block; the first run (no block yet) takes those stanzas over:
// it removes the stanzas of exactly the interfaces it is about to define,
// after keeping the whole file once as interfaces.phoenix-orig. Once the
// block exists, a stanza outside it for an interface Phoenix defines is
// refused (the operator added it; Phoenix will not guess which one wins).
//
// Safety: the candidate file is parsed (lib/hypervisor/interfaces-file.mts)
// before anything is written; the physical NIC must exist on the host; and
// after `ifreload -a` the management address must still be on the bridge
// and the default route still present. If not, the previous file is put
// back, `ifreload -a` runs again, and the step fails saying what was lost.
// The bash overwrote the whole file (and resolv.conf) on every run and
// never failed; /etc/resolv.conf is the DNS step's (lib/hypervisor/dns.mts).

import fs from 'node:fs';
import { PhoenixError, ConfigError } from '../core/errors.mts';
import { isDryRun } from '../core/context.mts';
import { info, warn } from '../core/log.mts';
import { readIfExists, writeFileAtomic } from '../core/fs.mts';
import { locateOwnedBlock, replaceOwnedBlock, ORIGINAL_SUFFIX } from '../core/owned-block.mts';
import { query, run } from '../core/runner.mts';
import { hostFile } from './host.mts';
import type { SetupContext, StepResult } from './setup-step.mts';
import { unifiedDiff } from '../core/text-diff.mts';
import { formatIssues, optionOf, ifaceStanzas, parseInterfaces, withoutInterfaces } from './interfaces-file.mts';
import { managedInterfaces, networkPlan, renderBlock, SOURCE_LINE, validateNetwork, wantsHostNetwork, type NetworkPlan } from './network-plan.mts';

export { validateNetwork } from './network-plan.mts';

export const INTERFACES_FILE = '/etc/network/interfaces';
export const BLOCK_BEGIN = '# BEGIN phoenix: host network';
export const BLOCK_END = '# END phoenix: host network';

// ---------------------------------------------------------------- the host's runtime state (iproute2)

interface IpLink {
  ifname: string;
}

interface IpAddr extends IpLink {
  addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
}

interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
}

async function ipJson<T>(args: string[]): Promise<T[] | undefined> {
  const result = await query({ cmd: 'ip', args: ['-j', ...args], allowFailure: true, quiet: true });
  if (result.code !== 0) return undefined;
  const text = result.stdout.trim();
  if (text === '') return [];
  try {
    return JSON.parse(text) as T[];
  } catch {
    throw new PhoenixError(`ip -j ${args.join(' ')} printed no JSON: ${text.slice(0, 200)}`);
  }
}

export async function hostLinks(): Promise<string[]> {
  const links = await ipJson<IpLink>(['link', 'show']);
  if (links === undefined) throw new PhoenixError('ip -j link show failed: cannot list the host\'s network interfaces');
  return links.map((link) => link.ifname);
}

/** The IPv4 addresses on a device, as `a.b.c.d/len` (none when the device does not exist). */
export async function deviceAddresses(dev: string): Promise<string[]> {
  const addrs = (await ipJson<IpAddr>(['addr', 'show', 'dev', dev])) ?? [];
  return addrs.flatMap((entry) => (entry.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`));
}

export async function defaultRoutes(): Promise<IpRoute[]> {
  return (await ipJson<IpRoute>(['route', 'show', 'default'])) ?? [];
}

interface Reachability {
  address: boolean;
  route: IpRoute | undefined;
}

async function reachability(plan: NetworkPlan): Promise<Reachability> {
  const addresses = await deviceAddresses(plan.bridge);
  return { address: addresses.includes(plan.address), route: (await defaultRoutes())[0] };
}

// ---------------------------------------------------------------- the file

interface Candidate {
  current: Buffer | undefined;
  text: string;
  hadBlock: boolean;
  ports: string[];
  /** Where the ports came from (the manifest, or the file's bridge-ports), for messages. */
  portsFrom: string;
  taken: string[];
}

function hypervisorFile(context: SetupContext): string {
  return context.config.paths.hypervisor;
}

/** The physical NIC(s): the manifest's, else the bridge's current bridge-ports in the file. */
function bridgePorts(context: SetupContext, plan: NetworkPlan, currentText: string): { ports: string[]; from: string } {
  if (plan.ports !== undefined) return { ports: plan.ports, from: 'network.interfaces.bridge_ports' };
  const parsed = parseInterfaces(currentText);
  const value = optionOf(parsed, plan.bridge, 'bridge-ports') ?? optionOf(parsed, plan.bridge, 'bridge_ports');
  const ports = (value ?? '').split(/\s+/).filter((word) => word !== '' && word !== 'none');
  if (ports.length === 0) {
    throw new ConfigError(hypervisorFile(context), '/network/interfaces/bridge_ports',
      `no physical NIC for ${plan.bridge}: the manifest names none and ${INTERFACES_FILE} gives ${plan.bridge} no bridge-ports`,
      'set network.interfaces.bridge_ports to the NIC the host is cabled on (see `ip -br link`)');
  }
  const line = ifaceStanzas(parsed, plan.bridge)[0]?.first;
  return { ports, from: `the bridge-ports of ${plan.bridge} in ${INTERFACES_FILE}${line === undefined ? '' : ` (line ${line})`}` };
}

/** The new file: the block rendered, stanzas taken over the first time, conflicts refused. */
export function candidateFile(context: SetupContext, plan: NetworkPlan, current: Buffer | undefined): Candidate {
  const file = INTERFACES_FILE;
  const oldText = current === undefined ? '' : current.toString('latin1');
  const located = locateOwnedBlock(oldText, { begin: BLOCK_BEGIN, end: BLOCK_END }, file);
  const { ports, from: portsFrom } = bridgePorts(context, plan, oldText);
  const names = new Set(managedInterfaces(plan, ports));
  let base = oldText;
  let taken: string[] = [];
  if (located === undefined) {
    ({ text: base, taken } = withoutInterfaces(oldText, names));
  } else {
    const outside = parseInterfaces(oldText).stanzas.filter((stanza) => stanza.first < located.beginLine || stanza.first > located.endLine);
    const clash = outside.find((stanza) => (stanza.kind === 'iface' || stanza.kind === 'vlan') && stanza.name !== undefined && names.has(stanza.name));
    if (clash !== undefined) {
      throw new PhoenixError(`${file}, line ${clash.first}: ${clash.name} is defined outside Phoenix's block as well as inside it`, {
        hint: `Phoenix defines ${[...names].join(', ')} in its block (${BLOCK_BEGIN}); remove or rename the stanza at line ${clash.first}, or change the manifest's network section. Nothing was changed.`,
      });
    }
  }
  const outsideText = located === undefined ? base : located.before + located.after;
  const hasSource = parseInterfaces(outsideText).stanzas.some((stanza) => stanza.kind === 'source' && stanza.words[0] === SOURCE_LINE.split(' ')[1]);
  const lines = renderBlock(plan, ports, !hasSource).map((line) => Buffer.from(line, 'utf8').toString('latin1'));
  const text = replaceOwnedBlock(base, { begin: BLOCK_BEGIN, end: BLOCK_END, lines }, file);
  return { current, text, hadBlock: located !== undefined, ports, portsFrom, taken };
}

function checkCandidate(text: string, context: SetupContext, names: ReadonlySet<string>): void {
  const parsed = parseInterfaces(text);
  const issues = formatIssues(INTERFACES_FILE, parsed.errors);
  // Files pulled in by `source` are read by ifupdown2 too: an interface of
  // Phoenix's defined there as well would be merged attribute by attribute.
  for (const stanza of parsed.stanzas.filter((candidate) => candidate.kind === 'source')) {
    for (const sourced of sourcedFiles(context, stanza.words[0] ?? '')) {
      const inner = parseInterfaces(fs.readFileSync(hostFile(context.options, sourced), 'utf8'));
      issues.push(...formatIssues(sourced, inner.errors));
      for (const clash of inner.stanzas.filter((s) => (s.kind === 'iface' || s.kind === 'vlan') && s.name !== undefined && names.has(s.name))) {
        issues.push(`${sourced}: line ${clash.first}: ${clash.name} is defined here and in Phoenix's block of ${INTERFACES_FILE}`);
      }
    }
  }
  if (issues.length === 0) return;
  throw new PhoenixError(`the new ${INTERFACES_FILE} would not parse cleanly; nothing was changed:\n  ${issues.join('\n  ')}`, {
    hint: 'the lines named are outside Phoenix\'s block (the operator\'s own stanzas) unless the manifest produced them; fix them and run again',
  });
}

/** The host paths a `source` pattern names (a `*`/`?` wildcard in the last component, like glob()). */
function sourcedFiles(context: SetupContext, pattern: string): string[] {
  if (!pattern.startsWith('/')) return [];
  const slash = pattern.lastIndexOf('/');
  const dir = pattern.slice(0, slash) || '/';
  const base = pattern.slice(slash + 1);
  const regex = new RegExp(`^${base.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`);
  let entries: string[];
  try {
    entries = fs.readdirSync(hostFile(context.options, dir));
  } catch {
    return [];
  }
  return entries
    .filter((entry) => !entry.startsWith('.') && regex.test(entry))
    .sort()
    .map((entry) => `${dir === '/' ? '' : dir}/${entry}`)
    .filter((file) => fs.statSync(hostFile(context.options, file)).isFile());
}

// ---------------------------------------------------------------- the step

export async function setupNetwork(context: SetupContext): Promise<StepResult> {
  const hv = context.config.hypervisor;
  if (!wantsHostNetwork(hv)) return { changes: [], skipped: 'the manifest has no network.interfaces section; /etc/network/interfaces left as it is' };
  const issues = validateNetwork(hv, hypervisorFile(context));
  if (issues.length > 0) throw new ConfigError(issues[0]!.file, issues[0]!.pointer, issues.map((issue) => `${issue.pointer}: ${issue.message}`).join('; '));
  const plan = networkPlan(hv) as NetworkPlan;
  const file = hostFile(context.options, INTERFACES_FILE);
  const current = readIfExists(file);
  const candidate = candidateFile(context, plan, current);

  const links = await hostLinks();
  const missing = candidate.ports.filter((port) => !links.includes(port));
  if (missing.length > 0) {
    throw new ConfigError(hypervisorFile(context), '/network/interfaces/bridge_ports',
      `no network interface ${missing.join(', ')} on this host (it has ${links.join(', ')}; the NIC came from ${candidate.portsFrom}); nothing was changed`,
      `name the NIC ${plan.bridge} should use; ${INTERFACES_FILE} was left as it was`);
  }
  checkCandidate(candidate.text, context, new Set(managedInterfaces(plan, candidate.ports)));

  const newBytes = Buffer.from(candidate.text, 'latin1');
  const fileChanged = current === undefined || !current.equals(newBytes);
  const changes: string[] = [];
  if (!fileChanged) {
    const stale = await runtimeGaps(plan, links);
    if (stale.length === 0) return { changes };
    changes.push(`applied ${INTERFACES_FILE} with ifreload -a (the running network lacked: ${stale.join(', ')})`);
    if (isDryRun()) return { changes };
    const before = await reachability(plan);
    await reload();
    await checkReachable(plan, before, undefined, file);
    return { changes };
  }

  const diff = unifiedDiff(current?.toString('latin1') ?? '', candidate.text, INTERFACES_FILE);
  const what = candidate.hadBlock ? 'Phoenix\'s block changed' : `Phoenix's block added${candidate.taken.length > 0 ? `, taking over ${candidate.taken.join('; ')}` : ''}`;
  changes.push(`${current === undefined ? 'created' : 'updated'} ${INTERFACES_FILE} (${what}; NIC ${candidate.ports.join(' ')}) and applied it with ifreload -a`);
  info(`${INTERFACES_FILE}:\n${diff.trimEnd()}`);
  // A new management address drops every session to the old one: said out loud, in dry-run too.
  const onBridge = await deviceAddresses(plan.bridge);
  if (onBridge.length > 0 && !onBridge.includes(plan.address)) {
    const moved = `the management address of ${plan.bridge} changes from ${onBridge.join(', ')} to ${plan.address}; connections to the old address will drop`;
    warn(moved);
    changes.push(moved);
  }
  if (isDryRun()) return { changes };

  const before = await reachability(plan);
  const keep = current === undefined ? { mode: 0o644 } : statKeep(file);
  if (current !== undefined && !candidate.hadBlock) keepOriginal(file, current, keep);
  writeFileAtomic(file, newBytes, keep);
  const reloaded = await run({ cmd: 'ifreload', args: ['-a'], allowFailure: true, timeoutMs: 5 * 60_000 });
  if (reloaded.code !== 0) {
    const restored = await restore(file, current, keep);
    throw new PhoenixError(`ifreload -a failed (exit ${reloaded.code}) on the new ${INTERFACES_FILE}: ${lastLines(reloaded.stderr)}; ${restored}`);
  }
  await checkReachable(plan, before, { current, keep }, file);
  return { changes };
}

async function reload(): Promise<void> {
  await run({ cmd: 'ifreload', args: ['-a'], timeoutMs: 5 * 60_000 });
}

/** What of Phoenix's interfaces the running host lacks although the file has them (a run stopped before its ifreload). */
async function runtimeGaps(plan: NetworkPlan, links: readonly string[]): Promise<string[]> {
  const gaps = managedInterfaces(plan, []).filter((name) => !links.includes(name));
  if (links.includes(plan.bridge) && !(await deviceAddresses(plan.bridge)).includes(plan.address)) gaps.push(`${plan.address} on ${plan.bridge}`);
  if (plan.internal !== undefined && links.includes(plan.internal.name) && !(await deviceAddresses(plan.internal.name)).includes(plan.internal.address)) {
    gaps.push(`${plan.internal.address} on ${plan.internal.name}`);
  }
  return gaps;
}

/**
 * After a reload: the management address on the bridge and a default route.
 * Either one gone means the host may be unreachable: the previous file goes
 * back (when there is one to go back to) and the step fails.
 */
async function checkReachable(plan: NetworkPlan, before: Reachability, previous: { current: Buffer | undefined; keep: Keep } | undefined, file: string): Promise<void> {
  const after = await reachability(plan);
  const lost: string[] = [];
  if (!after.address) lost.push(`the management address ${plan.address} is not on ${plan.bridge}${before.address ? ' any more' : ''}`);
  if (after.route === undefined) lost.push(`there is no default route${before.route === undefined ? '' : ` (it was via ${before.route.gateway ?? '?'} dev ${before.route.dev ?? '?'})`}`);
  if (lost.length === 0) return;
  const restored = previous === undefined ? `${INTERFACES_FILE} was not changed by this run; check the host's console` : await restore(file, previous.current, previous.keep);
  throw new PhoenixError(`after ifreload -a ${lost.join(' and ')}; ${restored}`, {
    hint: `check network.interfaces (name, bridge_ports, address, gateway) against the host's cabling; ${INTERFACES_FILE}${ORIGINAL_SUFFIX} is the file as it was before Phoenix first changed it`,
  });
}

type Keep = { mode: number; uid?: number; gid?: number };

/** Put the previous file back atomically and reload it; a sentence for the error message. */
async function restore(file: string, previous: Buffer | undefined, keep: Keep): Promise<string> {
  if (previous === undefined) {
    fs.rmSync(file, { force: true });
  } else writeFileAtomic(file, previous, keep);
  const again = await run({ cmd: 'ifreload', args: ['-a'], allowFailure: true, timeoutMs: 5 * 60_000 });
  if (again.code !== 0) {
    warn(`ifreload -a on the restored ${INTERFACES_FILE} failed too: ${lastLines(again.stderr)}`);
    return `the previous ${INTERFACES_FILE} is back, but reloading it failed too (exit ${again.code}); check the host's console`;
  }
  return `the previous ${INTERFACES_FILE} is back and was reloaded`;
}

function statKeep(file: string): Keep {
  const stat = fs.statSync(file);
  return { mode: stat.mode & 0o7777, uid: stat.uid, gid: stat.gid };
}

/** The file as it was before Phoenix's first change, kept once (never replaced later). */
function keepOriginal(file: string, content: Buffer, keep: Keep): void {
  const copy = `${file}${ORIGINAL_SUFFIX}`;
  if (fs.existsSync(copy)) return;
  writeFileAtomic(copy, content, keep);
  info(`Kept the original of ${INTERFACES_FILE} as ${INTERFACES_FILE}${ORIGINAL_SUFFIX}`);
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-5).join(' | ') || '(no message)';
}

