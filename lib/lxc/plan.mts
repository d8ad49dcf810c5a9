// What a container should look like, compared with what `pct config` says it
// looks like. Everything here is pure: a manifest entry and a parsed config go
// in, the changes come out (pct options, raw lxc.* lines, volume slots, disk
// growth). The lifecycle applies them; the tests read them.
//
// The comparison is semantic (property strings as key sets, MACs without
// case, Proxmox's implicit defaults such as `type=veth`), so a container that
// already matches its manifest produces an empty plan and a re-run changes
// nothing.

import type { LxcConfig, NetworkConfig } from '../config/types.mts';
import type { PveConfig } from '../pve/args.mts';
import { HOST_NAME, integerIn, matching, propertyValue } from '../config/field-values.mts';
import { MAX_DISK_GB, STORAGE_ID, desiredMounts, mountValue, planMounts, sizeInGb } from './mounts.mts';
import { formatProps, parseProps } from './props.mts';
import { desiredRawLines, planRawLines, type RawPlan } from './raw-lines.mts';

export { parseProps, formatProps } from './props.mts';
export { STORAGE_ID, MAX_DISK_GB } from './mounts.mts';
export { APPARMOR_PROFILE, type RawLine, type RawPlan, parseRawLine, formatRawLine, GPU_DEVICE_MAJORS, desiredRawLines, apparmorLines, gpuLines, planRawLines } from './raw-lines.mts';
export { type DesiredMount, desiredMounts, mountValue, planMounts, sizeInGb } from './mounts.mts';

// Every manifest value below is checked for the place it is written to
// (field-values.mts) while the plan is made, so a value that would add a
// property or a line of its own stops the run before the first change:
// the lifecycle makes the whole plan before it stops a running container.
const MAC = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/;
const NET_IP = /^(dhcp|manual|\d{1,3}(\.\d{1,3}){3}\/\d{1,2})$/;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const IPV4_LIST = /^\d{1,3}(\.\d{1,3}){3}([ ,]+\d{1,3}(\.\d{1,3}){3})*$/;
const FEATURE = /^[a-z][a-z_-]*=[A-Za-z0-9_.;+-]+$/;
const MAX_MEMORY_MB = 268435456;


export interface ConfigPlan {
  /** Options for one `pct set` (name without dashes → value). */
  set: Record<string, string>;
  /** Options for `pct set --delete`. */
  delete: string[];
  raw: RawPlan;
  /** `pct resize` calls: disk (rootfs, mpN) and the new size (e.g. 16G). */
  resize: Array<{ disk: string; size: string }>;
  /** Things the manifest asks for that cannot or should not be done automatically. */
  notes: string[];
}

export function isEmptyPlan(plan: ConfigPlan): boolean {
  return Object.keys(plan.set).length === 0 && plan.delete.length === 0 && plan.raw.add.length === 0 && plan.raw.remove.length === 0 && plan.resize.length === 0;
}

// ---------------------------------------------------------------- network

const MACVLAN_TYPE = (n: number) => new RegExp(`^lxc\\.net\\.${n}\\.type\\s*[:=]\\s*macvlan\\s*$`);

/** Macvlan is declared the upstream way: an `lxc.net.<n>.type: macvlan` line in lxc_options. */
export function isMacvlan(ct: LxcConfig, n: number): boolean {
  return (ct.lxc_options ?? []).some((line) => MACVLAN_TYPE(n).test(line.trim()));
}

function networkOf(ct: LxcConfig, n: number): NetworkConfig | undefined {
  return n === 0 ? ct.network_config : n === 1 ? ct.secondary_network_config : undefined;
}

/** The desired `net<n>` value as a property map, or undefined when the manifest has no such interface. */
export function desiredNet(ct: LxcConfig, n: number): Record<string, string> | undefined {
  const net = networkOf(ct, n);
  if (!net) return undefined;
  const field = n === 0 ? 'network_config' : 'secondary_network_config';
  propertyValue(`${field}/name`, net.name);
  propertyValue(`${field}/bridge`, net.bridge);
  const hwaddr = net.hwaddr ?? (n === 0 ? ct.mac_address : undefined);
  if (hwaddr !== undefined) matching(net.hwaddr !== undefined ? `${field}/hwaddr` : 'mac_address', hwaddr, MAC, 'a MAC address');
  if (isMacvlan(ct, n)) {
    // The raw lxc.net.<n>.* lines carry the macvlan settings; the Proxmox
    // entry only names the interface and its MAC. Proxmox's firewall bridge
    // cannot sit in front of a macvlan, hence firewall=0.
    return compact({ name: net.name, bridge: net.bridge, hwaddr, firewall: '0' });
  }
  const firewall = net.firewall ?? ct.firewall?.enabled === true;
  return compact({
    name: net.name,
    bridge: net.bridge,
    ip: matching(`${field}/ip`, net.ip, NET_IP, 'dhcp, manual or an IPv4 address with prefix length'),
    gw: net.gw === undefined ? undefined : matching(`${field}/gw`, net.gw, IPV4, 'an IPv4 address'),
    hwaddr,
    tag: net.tag === undefined ? undefined : integerIn(`${field}/tag`, net.tag, 1, 4094),
    mtu: net.mtu === undefined ? undefined : integerIn(`${field}/mtu`, net.mtu, 576, 65520),
    firewall: firewall ? '1' : '0',
  });
}

/** Does the current `netN` value already say what `desired` says? */
export function netMatches(desired: Record<string, string>, current: string | undefined): boolean {
  if (current === undefined) return false;
  const have = parseProps(current);
  if (have.type === 'veth') delete have.type;
  if (have.firewall === undefined) have.firewall = '0';
  for (const [key, value] of Object.entries(desired)) {
    const got = have[key];
    if (got === undefined) return false;
    if (key === 'hwaddr' ? got.toUpperCase() !== value.toUpperCase() : got !== value) return false;
  }
  for (const key of Object.keys(have)) {
    // A MAC the manifest leaves open is whatever Proxmox generated.
    if (desired[key] === undefined && key !== 'hwaddr') return false;
  }
  return true;
}

export function desiredNameserver(ct: LxcConfig): string | undefined {
  return ct.network_config.nameserver ?? ct.network_config.nameservers;
}

function sameNameservers(a: string, b: string | undefined): boolean {
  const norm = (s: string) => s.split(/[\s,;]+/).filter(Boolean).join(' ');
  return b !== undefined && norm(a) === norm(b);
}

// ---------------------------------------------------------------- resources, boot, features

export function desiredStartup(ct: LxcConfig): string | undefined {
  if (ct.boot_order === undefined && ct.boot_delay === undefined) return undefined;
  return formatProps({
    order: ct.boot_order === undefined ? undefined : integerIn('boot_order', ct.boot_order, 0, 2147483647),
    up: ct.boot_delay === undefined ? undefined : integerIn('boot_delay', ct.boot_delay, 0, 86400),
    down: ct.boot_delay === undefined ? undefined : integerIn('boot_delay', ct.boot_delay, 0, 86400),
  });
}

function sameKeyValues(a: string, b: string | undefined): boolean {
  if (b === undefined) return false;
  const x = parseProps(a);
  const y = parseProps(b);
  const keys = new Set([...Object.keys(x), ...Object.keys(y)]);
  for (const key of keys) if (x[key] !== y[key]) return false;
  return true;
}

/** Options managed as plain values: what the manifest says, in pct's spelling. */
export function desiredOptions(ct: LxcConfig): Record<string, string> {
  const options: Record<string, string> = {
    hostname: matching('name', ct.name, HOST_NAME, 'a host name'),
    memory: integerIn('memory_mb', ct.memory_mb, 16, MAX_MEMORY_MB),
    cores: integerIn('cores', ct.cores, 1, 8192),
  };
  if (ct.swap_mb !== undefined) options.swap = integerIn('swap_mb', ct.swap_mb, 0, MAX_MEMORY_MB);
  options.onboot = ct.start_at_boot === true ? '1' : '0';
  const startup = desiredStartup(ct);
  if (startup !== undefined) options.startup = startup;
  for (const n of [0, 1]) {
    const net = desiredNet(ct, n);
    if (net) options[`net${n}`] = formatProps(net);
  }
  const nameserver = desiredNameserver(ct);
  if (nameserver !== undefined) options.nameserver = matching('network_config/nameserver', nameserver, IPV4_LIST, 'IPv4 addresses separated by spaces or commas');
  (ct.pct_options ?? []).forEach((flag, i) => matching(`pct_options/${i}`, flag, FEATURE, 'a feature flag such as nesting=1'));
  if (ct.pct_options && ct.pct_options.length > 0) options.features = ct.pct_options.join(',');
  return options;
}

function optionMatches(key: string, desired: string, current: string | undefined): boolean {
  if (/^net\d+$/.test(key)) return netMatches(parseProps(desired), current);
  if (key === 'startup' || key === 'features') return sameKeyValues(desired, current);
  if (key === 'nameserver') return sameNameservers(desired, current);
  // Proxmox omits a false onboot from the config.
  if (key === 'onboot') return desired === (current ?? '0');
  return desired === current;
}

// ---------------------------------------------------------------- the whole plan

export interface PlanInput {
  ct: LxcConfig;
  current: PveConfig;
  /** A template only takes option changes: its disks are read-only bases. */
  isTemplate?: boolean;
}

export function planConfig({ ct, current, isTemplate = false }: PlanInput): ConfigPlan {
  const plan: ConfigPlan = { set: {}, delete: [], raw: { add: [], remove: [] }, resize: [], notes: [] };
  integerIn('storage_size_gb', ct.storage_size_gb, 1, MAX_DISK_GB);
  const desired = desiredOptions(ct);
  for (const [key, value] of Object.entries(desired)) {
    if (!optionMatches(key, value, current.values[key])) plan.set[key] = value;
  }
  if (!ct.secondary_network_config && current.values.net1 !== undefined) plan.delete.push('net1');

  const unprivileged = current.values.unprivileged === '1';
  if (ct.unprivileged === true && !unprivileged) {
    plan.notes.push('the manifest says unprivileged, but the container is privileged; Proxmox cannot change this after creation (re-create it)');
  } else if (ct.unprivileged === false && unprivileged) {
    plan.notes.push('the manifest says privileged, but the container is unprivileged; Proxmox cannot change this after creation (re-create it)');
  }

  const currentRaw = current.entries.filter(([key]) => key.startsWith('lxc.')).map(([key, value]) => ({ key, value }));
  const owned = [0, 1].filter((n) => isMacvlan(ct, n)).map((n) => `lxc.net.${n}.`);
  const raw = planRawLines(desiredRawLines(ct), currentRaw, owned);
  plan.raw = raw.plan;
  plan.notes.push(...raw.notes);

  const mounts = planMounts(desiredMounts(ct), current);
  const growth = rootfsGrowth(ct, current);
  if (isTemplate) {
    if (Object.keys(mounts.set).length > 0 || mounts.resize.length > 0 || growth !== undefined) {
      plan.notes.push('disks and mount points of a template are not changed (its volumes are bases of linked clones)');
    }
    return plan;
  }
  Object.assign(plan.set, mounts.set);
  plan.notes.push(...mounts.notes);
  if (growth !== undefined) plan.resize.push({ disk: 'rootfs', size: growth });
  const have = sizeInGb(parseProps(current.values.rootfs ?? '', 'volume').size);
  if (have !== undefined && ct.storage_size_gb < have) plan.notes.push(`rootfs is ${have}G, the manifest asks for ${ct.storage_size_gb}G; a disk is never shrunk`);
  plan.resize.push(...mounts.resize);
  return plan;
}

function rootfsGrowth(ct: LxcConfig, current: PveConfig): string | undefined {
  // Proxmox records the size of every volume it allocated; a rootfs without one is not ours to grow.
  const have = sizeInGb(parseProps(current.values.rootfs ?? '', 'volume').size);
  return have !== undefined && ct.storage_size_gb > have ? `${ct.storage_size_gb}G` : undefined;
}

// ---------------------------------------------------------------- creation

/**
 * Options for `pct create` from an OS template: everything settable at
 * creation goes in here, so the configuration pass after it finds little
 * or nothing left to do.
 */
export function createOptions(ct: LxcConfig): Record<string, string> {
  const options = desiredOptions(ct);
  const out: Record<string, string> = {
    hostname: options.hostname as string,
    memory: options.memory as string,
    cores: options.cores as string,
  };
  if (options.swap !== undefined) out.swap = options.swap;
  out.storage = matching('storage_pool', ct.storage_pool, STORAGE_ID, 'a Proxmox storage id');
  out.rootfs = `${ct.storage_pool}:${integerIn('storage_size_gb', ct.storage_size_gb, 1, MAX_DISK_GB)}`;
  for (const key of ['net0', 'net1', 'nameserver', 'onboot', 'startup', 'features']) {
    if (options[key] !== undefined) out[key] = options[key] as string;
  }
  out.unprivileged = ct.unprivileged === true ? '1' : '0';
  desiredMounts(ct).forEach((mount, i) => {
    out[`mp${i}`] = mountValue(mount);
  });
  return out;
}

/**
 * The config a dry-run assumes after a `pct create` it only printed, so the
 * rest of the plan can still be computed and shown.
 */
export function assumedConfigAfterCreate(ctid: string, options: Record<string, string>): PveConfig {
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(options)) {
    if (key === 'storage') continue;
    if (key === 'rootfs') {
      const [storage, size] = value.split(':');
      values.rootfs = `${storage}:subvol-${ctid}-disk-0,size=${size}G`;
    } else if (/^mp\d+$/.test(key) && !value.startsWith('/')) {
      const props = parseProps(value, 'volume');
      const [storage, size] = (props.volume ?? '').split(':');
      values[key] = formatProps({ volume: `${storage}:subvol-${ctid}-disk-${key.slice(2)}`, mp: props.mp, size: `${size}G` }, 'volume');
    } else {
      values[key] = value;
    }
  }
  return { entries: Object.entries(values), values };
}

/** The config a dry-run assumes after a `pct clone` it only printed. */
export function assumedConfigAfterClone(source: PveConfig, hostname: string): PveConfig {
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(source.values)) {
    if (key === 'template' || key === 'parent') continue;
    values[key] = /^net\d+$/.test(key) ? formatProps({ ...parseProps(value), hwaddr: undefined }) : value;
  }
  values.hostname = hostname;
  const raw = source.entries.filter(([key]) => key.startsWith('lxc.'));
  return { entries: [...Object.entries(values), ...raw], values };
}

function compact(props: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(props)) if (value !== undefined) out[key] = value;
  return out;
}

/**
 * Every value the plan would write, checked without a current config: run
 * before the first change of a create or converge, so a value that cannot
 * be written stops the run with nothing created, stopped or edited.
 */
export function checkManifestValues(ct: LxcConfig): void {
  createOptions(ct);
  desiredRawLines(ct);
}
