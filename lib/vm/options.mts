// The qm options a VM should have, and the difference to what `qm config`
// shows. Pure. The bash re-ran every `qm set` on every create; here only
// options that differ are set (in one call), so a second run on an
// unchanged VM sets nothing and can say so.

import type { OptionMap } from '../pve/args.mts';
import { ipconfigValue, type VmSpec } from './spec.mts';

/** Options vm-manager owns: set when the manifest says so, removed when it does not. */
export type ManagedKey = 'name' | 'cores' | 'memory' | 'agent' | 'onboot' | 'startup' | 'net0' | 'ipconfig0' | 'nameserver' | 'searchdomain' | 'ciuser' | 'cicustom';

/** Changing these only reaches the guest through its cloud-init drive. */
export const CLOUD_INIT_KEYS: ReadonlySet<string> = new Set(['ipconfig0', 'nameserver', 'searchdomain', 'ciuser', 'cicustom']);

export interface Desired {
  /** undefined: the option must be absent. */
  values: Partial<Record<ManagedKey, string | undefined>>;
}

export interface OptionDiff {
  set: Record<string, string>;
  remove: string[];
  /** Keys that differ, for the log. */
  changed: string[];
}

export function desiredOptions(spec: VmSpec, extras: { cicustom?: string | undefined; currentNet0?: string | undefined } = {}): Desired {
  return {
    values: {
      name: spec.name,
      cores: String(spec.cores),
      memory: String(spec.memoryMb),
      agent: '1',
      onboot: spec.onboot ? '1' : '0',
      startup: spec.startup,
      net0: net0Value(spec, extras.currentNet0),
      ipconfig0: ipconfigValue(spec),
      nameserver: spec.nameservers,
      searchdomain: spec.searchdomain,
      ciuser: spec.user,
      cicustom: extras.cicustom,
    },
  };
}

/** What `qm create` gets for a VM built from a cloud image: everything in one call. */
export function createFromImageOptions(spec: VmSpec, imageVolid: string, cicustom: string | undefined): OptionMap {
  const d = desiredOptions(spec, { cicustom }).values;
  const options: OptionMap = {
    name: d.name,
    ostype: 'l26',
    cores: d.cores,
    memory: d.memory,
    agent: d.agent,
    scsihw: 'virtio-scsi-pci',
    // qm imports the image and attaches the new volume in the same step, so
    // no disk name is guessed (the bash assumed vm-<id>-disk-0).
    scsi0: `${spec.storage}:0,import-from=${imageVolid}`,
    ide2: `${spec.storage}:cloudinit`,
    boot: 'order=scsi0',
    // Cloud images log to the serial console; without one the boot hangs on some.
    serial0: 'socket',
    vga: 'serial0',
    net0: d.net0,
    onboot: d.onboot,
    startup: d.startup,
    ipconfig0: d.ipconfig0,
    nameserver: d.nameserver,
    searchdomain: d.searchdomain,
    ciuser: d.ciuser,
    cicustom: d.cicustom,
  };
  return options;
}

export function diffOptions(desired: Desired, current: Readonly<Record<string, string>>): OptionDiff {
  const diff: OptionDiff = { set: {}, remove: [], changed: [] };
  for (const [key, want] of Object.entries(desired.values) as Array<[ManagedKey, string | undefined]>) {
    const have = current[key];
    if (want === undefined) {
      if (have !== undefined) {
        diff.remove.push(key);
        diff.changed.push(key);
      }
      continue;
    }
    if (!sameValue(key, want, have)) {
      diff.set[key] = want;
      diff.changed.push(key);
    }
  }
  return diff;
}

export function isEmptyDiff(diff: OptionDiff): boolean {
  return diff.changed.length === 0;
}

/** The diff as `qm set` options. */
export function diffAsOptions(diff: OptionDiff): OptionMap {
  const options: OptionMap = { ...diff.set };
  if (diff.remove.length > 0) options.delete = diff.remove.join(',');
  return options;
}

function sameValue(key: ManagedKey, want: string, have: string | undefined): boolean {
  if (have === undefined) return key === 'onboot' && want === '0';
  switch (key) {
    case 'agent':
      return agentEnabled(have) === agentEnabled(want);
    case 'memory':
      return Number(have.replace(/^current=/, '')) === Number(want);
    case 'net0':
      return sameNic(want, have);
    case 'nameserver':
      return have.split(/[\s,]+/).filter(Boolean).join(' ') === want;
    default:
      return have === want;
  }
}

function agentEnabled(value: string): boolean {
  const first = value.split(',')[0] ?? '';
  return first === '1' || first === 'enabled=1';
}

// ---------------------------------------------------------------- net0

const NIC_MODELS = new Set(['e1000', 'e1000e', 'rtl8139', 'virtio', 'vmxnet3']);

export interface Nic {
  model: string;
  mac?: string;
  /** Every other key=value in the order given (bridge, firewall, tag, mtu, ...). */
  props: Map<string, string>;
}

export function parseNic(value: string): Nic {
  const nic: Nic = { model: 'virtio', props: new Map() };
  for (const part of value.split(',')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = eq === -1 ? part : part.slice(0, eq);
    const v = eq === -1 ? undefined : part.slice(eq + 1);
    if (NIC_MODELS.has(key)) {
      nic.model = key;
      if (v) nic.mac = v;
    } else if (key === 'model' && v) nic.model = v;
    else if (key === 'macaddr' && v) nic.mac = v;
    else nic.props.set(key, v ?? '');
  }
  return nic;
}

export function formatNic(nic: Nic): string {
  return [nic.mac ? `${nic.model}=${nic.mac}` : nic.model, ...[...nic.props].map(([k, v]) => `${k}=${v}`)].join(',');
}

/**
 * net0 as the manifest wants it, keeping what it does not speak about (the
 * MAC address, model, rate, mtu) from the current value. The firewall flag
 * is removed again when the manifest disables the firewall (the bash only
 * ever added it).
 */
export function net0Value(spec: Pick<VmSpec, 'bridge' | 'firewall' | 'vlanTag'>, current: string | undefined): string {
  const nic = current ? parseNic(current) : { model: 'virtio', props: new Map<string, string>() };
  nic.props.set('bridge', spec.bridge);
  if (spec.firewall) nic.props.set('firewall', '1');
  else nic.props.delete('firewall');
  if (spec.vlanTag !== undefined) nic.props.set('tag', String(spec.vlanTag));
  else nic.props.delete('tag');
  return formatNic(nic);
}

function sameNic(want: string, have: string): boolean {
  const a = parseNic(want);
  const b = parseNic(have);
  if (a.model !== b.model) return false;
  if (a.mac && b.mac && a.mac.toUpperCase() !== b.mac.toUpperCase()) return false;
  const norm = (nic: Nic) => {
    const props = new Map(nic.props);
    if (props.get('firewall') === '0') props.delete('firewall');
    return [...props].sort(([x], [y]) => x.localeCompare(y)).map(([k, v]) => `${k}=${v}`).join(',');
  };
  return norm(a) === norm(b);
}

/** The MAC address of net0 (cloud-init's network-config matches on it). */
export function macOf(net0: string | undefined): string | undefined {
  return net0 ? parseNic(net0).mac?.toLowerCase() : undefined;
}

// ---------------------------------------------------------------- disk

export interface DiskState {
  key: string;
  bytes: number | undefined;
}

/** The boot disk: the first disk in `boot: order=…`, else scsi0. */
export function bootDisk(config: Readonly<Record<string, string>>): DiskState | undefined {
  const order = /order=([^,]+)/.exec(config.boot ?? '')?.[1]?.split(';') ?? [];
  const key = [...order, config.bootdisk ?? '', 'scsi0', 'virtio0', 'sata0'].find((k) => /^(scsi|virtio|sata|ide)\d+$/.test(k) && config[k] !== undefined && !/media=cdrom/.test(config[k] ?? ''));
  if (!key) return undefined;
  const size = /(?:^|,)size=([^,]+)/.exec(config[key] ?? '')?.[1];
  return { key, bytes: size === undefined ? undefined : parseSize(size) };
}

/** "16G" → bytes; undefined when it is not a size. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([KMGT])?$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? '').toUpperCase();
  const power = unit === '' ? 0 : ' KMGT'.indexOf(unit);
  return Math.round(Number(m[1]) * 1024 ** power);
}

export type ResizePlan = { action: 'grow'; disk: string; size: string } | { action: 'none' } | { action: 'larger'; disk: string; currentGb: number };

/** Grow the boot disk to disk_size_gb; a larger disk is left alone (Proxmox cannot shrink). */
export function resizePlan(spec: Pick<VmSpec, 'diskGb'>, config: Readonly<Record<string, string>>): ResizePlan {
  if (spec.diskGb === undefined) return { action: 'none' };
  const disk = bootDisk(config);
  if (!disk || disk.bytes === undefined) return { action: 'none' };
  const want = spec.diskGb * 1024 ** 3;
  if (disk.bytes < want) return { action: 'grow', disk: disk.key, size: `${spec.diskGb}G` };
  if (disk.bytes > want) return { action: 'larger', disk: disk.key, currentGb: Math.round((disk.bytes / 1024 ** 3) * 10) / 10 };
  return { action: 'none' };
}
