// One VM of phoenix_vm_configs.json, resolved against vm_defaults and the
// hypervisor config into the values vm-manager acts on. Pure: no command is
// run here, so every decision about a manifest is unit-testable.
//
// The bash read a handful of keys and silently ignored the rest. Here every
// key vm-manager is responsible for is either applied or refused with an
// error naming it; keys other scripts read (swarm, Portainer, Traefik, DNS,
// firewall rules) are left to them.

import { ConfigError } from '../core/errors.mts';
import type { HypervisorConfig, NfsVolume, VmConfig, VmManifest } from '../config/types.mts';

export interface VmSpec {
  vmid: string;
  name: string;
  /** is_template: built from a cloud image, provisioned, then converted with `qm template`. */
  isTemplate: boolean;
  /** clone_from_vmid: made with `qm clone --full` from this VM. */
  cloneFrom?: string;
  /** template_image: the cloud image file, looked up in the ISO storages. */
  image?: string;
  /** The storage for the VM's disks (per-VM storage_pool, else vm_defaults). */
  storage: string;
  bridge: string;
  vlanTag?: number;
  firewall: boolean;
  cores: number;
  memoryMb: number;
  /** disk_size_gb (per-VM, else vm_defaults); the boot disk is grown to it, never shrunk. */
  diskGb?: number;
  onboot: boolean;
  /** `--startup` value from boot_order / boot_delay. */
  startup?: string;
  /** `dhcp` or an address with prefix length. */
  ip: string;
  gw?: string;
  /** Space-separated, as `qm set --nameserver` takes them. */
  nameservers?: string;
  searchdomain?: string;
  user?: string;
  nfsVolumes: NfsVolume[];
  features: string[];
  preFeaturesSnapshot?: string;
  postFeaturesSnapshot?: string;
  /** template_snapshot_name of a non-template VM: its final, provisioned state. */
  finalSnapshot?: string;
  /**
   * template_snapshot_name of the clone source when that source is a
   * template: Proxmox keeps no snapshots on templates, so each clone keeps
   * the template's state under this name instead.
   */
  cloneBaseSnapshot?: string;
  /** Where the entry sits, for messages (`/vms/1`). */
  pointer: string;
  /** Notes for the operator about keys accepted but without effect here. */
  notes: string[];
}

export interface SpecInput {
  vmManifest: VmManifest;
  vmFile: string;
  hypervisor: HypervisorConfig | undefined;
}

/** Proxmox snapshot names: a letter, then up to 39 letters, digits, '-' or '_'. */
const SNAPSHOT_NAME = /^[A-Za-z][A-Za-z0-9_-]{1,39}$/;

/** Find the manifest entry of a VM; undefined when the manifest does not name it. */
export function findVm(manifest: VmManifest, vmid: string): { vm: VmConfig; index: number } | undefined {
  const index = manifest.vms.findIndex((vm) => String(vm.vmid) === vmid);
  const vm = manifest.vms[index];
  return vm === undefined ? undefined : { vm, index };
}

export function vmSpec(input: SpecInput, vmid: string): VmSpec {
  const found = findVm(input.vmManifest, vmid);
  if (!found) throw new ConfigError(input.vmFile, '/vms', `VM ${vmid} not found in configuration`);
  const { vm, index } = found;
  const pointer = `/vms/${index}`;
  const defaults = input.vmManifest.vm_defaults;
  const fail = (key: string, message: string): never => {
    throw new ConfigError(input.vmFile, `${pointer}/${key}`, message);
  };
  const notes: string[] = [];
  const loose = vm as VmConfig & Record<string, unknown>;

  // Declared by the schema, never implemented upstream: refuse rather than pretend.
  if (typeof vm.count === 'number' && vm.count > 1) {
    fail('count', `count ${vm.count} is not supported: one entry makes one VM with its own vmid; declare each VM separately`);
  }
  if ((vm.qm_options ?? []).length > 0) {
    fail('qm_options', 'qm_options is not supported (free-form qm options were never applied); express the setting with a typed key or set it with qm by hand');
  }
  if ((vm.iptables_rules ?? []).length > 0) {
    fail('iptables_rules', 'iptables_rules is not supported; use firewall.rules (Proxmox firewall) instead');
  }
  const vlan = loose.vlan_tag;
  if (vlan !== undefined && (typeof vlan !== 'number' || !Number.isInteger(vlan) || vlan < 1 || vlan > 4094)) {
    fail('vlan_tag', `expected an integer VLAN id from 1 to 4094, got ${JSON.stringify(vlan)}`);
  }

  const isTemplate = vm.is_template === true;
  const cloneFrom = vm.clone_from_vmid === undefined ? undefined : String(vm.clone_from_vmid);
  if (!cloneFrom && !vm.template_image) {
    fail('template_image', 'a VM needs clone_from_vmid or template_image to be created from');
  }

  const network = vm.network_config;
  const ip = network?.ip ?? 'dhcp';
  if (ip !== 'dhcp' && !network?.gw) fail('network_config/gw', `a static address (${ip}) needs a gateway`);
  const hostDns = input.hypervisor?.network?.interfaces?.dns_nameservers ?? [];
  const nameservers = network?.nameserver !== undefined ? splitList(network.nameserver) : hostDns.length > 0 ? hostDns.join(' ') : undefined;
  const searchdomain = network?.searchdomain ?? input.hypervisor?.domain_name;

  const snapshotName = (key: string, value: string | undefined): string | undefined => {
    if (value === undefined) return undefined;
    if (!SNAPSHOT_NAME.test(value)) fail(key, `${JSON.stringify(value)} is not a Proxmox snapshot name (a letter, then 1 to 39 letters, digits, '-' or '_')`);
    if (value === 'current' || value === 'pending') fail(key, `'${value}' is reserved by Proxmox`);
    return value;
  };
  const preFeaturesSnapshot = snapshotName('snapshots/pre-features', vm.snapshots?.['pre-features']);
  const postFeaturesSnapshot = snapshotName('snapshots/post-features', vm.snapshots?.['post-features']);
  const ownSnapshot = snapshotName('template_snapshot_name', vm.template_snapshot_name);
  if (isTemplate && (preFeaturesSnapshot || postFeaturesSnapshot)) {
    fail('snapshots', 'a template cannot keep snapshots (Proxmox refuses `qm template` on a VM that has any)');
  }

  let cloneBaseSnapshot: string | undefined;
  if (cloneFrom !== undefined) {
    const source = findVm(input.vmManifest, cloneFrom)?.vm;
    if (source?.is_template === true && source.template_snapshot_name !== undefined) cloneBaseSnapshot = source.template_snapshot_name;
  }
  if (isTemplate && ownSnapshot) notes.push(`template_snapshot_name '${ownSnapshot}': Proxmox keeps no snapshots on a template; each clone of ${vmid} takes it right after cloning`);
  if (isTemplate && vm.start_at_boot === true) notes.push('start_at_boot: a template never starts; onboot stays 0');

  const startup = isTemplate ? undefined : startupValue(vm.boot_order, vm.boot_delay);
  const diskGb = vm.disk_size_gb ?? defaults.disk_size_gb;

  const spec: VmSpec = {
    vmid,
    name: vm.name,
    isTemplate,
    storage: vm.storage_pool ?? defaults.storage_pool,
    bridge: vm.network_bridge ?? defaults.network_bridge,
    firewall: vm.firewall?.enabled === true,
    cores: vm.cores ?? defaults.cores,
    memoryMb: vm.memory_mb ?? defaults.memory_mb,
    onboot: !isTemplate && vm.start_at_boot === true,
    ip,
    nfsVolumes: (vm.volumes ?? []).filter((v) => v.type === 'nfs'),
    features: [...(vm.features ?? [])],
    pointer,
    notes,
  };
  if (cloneFrom !== undefined) spec.cloneFrom = cloneFrom;
  if (vm.template_image !== undefined) spec.image = vm.template_image;
  if (typeof vlan === 'number') spec.vlanTag = vlan;
  if (diskGb !== undefined) spec.diskGb = diskGb;
  if (startup !== undefined) spec.startup = startup;
  if (ip !== 'dhcp' && network?.gw) spec.gw = network.gw;
  if (nameservers !== undefined) spec.nameservers = nameservers;
  if (searchdomain !== undefined) spec.searchdomain = searchdomain;
  if (vm.user_config?.username !== undefined) spec.user = vm.user_config.username;
  if (preFeaturesSnapshot !== undefined) spec.preFeaturesSnapshot = preFeaturesSnapshot;
  if (postFeaturesSnapshot !== undefined) spec.postFeaturesSnapshot = postFeaturesSnapshot;
  if (ownSnapshot !== undefined && !isTemplate) spec.finalSnapshot = ownSnapshot;
  if (cloneBaseSnapshot !== undefined) spec.cloneBaseSnapshot = cloneBaseSnapshot;
  return spec;
}

/** "10.0.0.5, 9.9.9.9" → "10.0.0.5 9.9.9.9". */
function splitList(value: string): string {
  return value.split(/[\s,]+/).filter(Boolean).join(' ');
}

/** Proxmox `--startup`: `order=N,up=S`; an absent boot_delay leaves `up` out (the bash wrote an invalid `up=`). */
export function startupValue(order: number | undefined, delay: number | undefined): string | undefined {
  const parts: string[] = [];
  if (order !== undefined) parts.push(`order=${order}`);
  if (delay !== undefined) parts.push(`up=${delay}`);
  return parts.length > 0 ? parts.join(',') : undefined;
}

/** `ipconfig0` as Proxmox stores it. */
export function ipconfigValue(spec: Pick<VmSpec, 'ip' | 'gw'>): string {
  return spec.ip === 'dhcp' ? 'ip=dhcp' : `ip=${spec.ip}${spec.gw ? `,gw=${spec.gw}` : ''}`;
}

/** The first NFS volume: the bash's staging area and persistent data mount. */
export function primaryVolume(spec: Pick<VmSpec, 'nfsVolumes'>): NfsVolume | undefined {
  return spec.nfsVolumes[0];
}

/** Certificate-manifest entries that belong to this VM. */
export function certificateEntriesFor<T extends { guest_id?: number; guest_type?: string }>(entries: readonly T[], vmid: string): T[] {
  return entries.filter((e) => e.guest_type === 'vm' && String(e.guest_id) === vmid);
}
