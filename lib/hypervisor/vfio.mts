// VFIO passthrough on the host (setup step 6, and the orphan
// hypervisor_feature_setup_vfio.sh as a second entry): the IOMMU on the
// kernel command line, the vfio modules at boot, and the PCI devices that
// vfio-pci claims before any other driver can.
//
// What the bash got wrong, and how this differs:
// - The device ids were hard-coded placeholders (and space-separated, which
//   vfio-pci does not read); here they come from the manifest's `vfio`
//   section, comma-separated, and without the section nothing is done.
// - Only `intel_iommu=on` in /etc/default/grub; AMD hosts and hosts whose
//   command line lives in /etc/kernel/cmdline (systemd-boot, ZFS root,
//   managed by proxmox-boot-tool) were left as they were. Here the vendor
//   comes from /proc/cpuinfo, and the command line goes where the boot
//   loader reads it: a GRUB drop-in Phoenix owns, or Phoenix's words added
//   to the one line of /etc/kernel/cmdline, every other byte kept.
// - It blacklisted `nvidia`, which the next step installs. Here passing an
//   NVIDIA device to vfio-pci and installing the NVIDIA host driver are
//   refused together by validateGpu, before any step runs; vfio-pci gets
//   the devices first through softdeps, and only nouveau is blacklisted.
// - update-initramfs ran every time; here only when a module file changed.
//
// Everything takes effect at the next boot, so the step reports a reboot
// (without stopping the run: nothing later depends on it).

import fs from 'node:fs';
import { query, run } from '../core/runner.mts';
import { warn } from '../core/log.mts';
import { PhoenixError } from '../core/errors.mts';
import { ensureOwnedBlock } from '../core/owned-block.mts';
import { readIfExists, removeFile, writeFileAtomic } from '../core/fs.mts';
import { ManifestError } from '../config/schema-check.mts';
import type { ConfigIssue, HypervisorConfig } from '../config/types.mts';
import type { PhoenixOptions } from '../core/env.mts';
import { hostFile } from './host.mts';
import { fileChange, type SetupContext, type StepResult } from './setup-step.mts';
import { cpuVendor, kernelOlderThan, kernelRelease, NOUVEAU_BLACKLIST, NVIDIA_VENDOR, pciDevices, updateInitramfs, writeNouveauBlacklist } from './kernel-files.mts';

export const MODULES_FILE = '/etc/modules';
export const VFIO_CONF = '/etc/modprobe.d/phoenix-vfio.conf';
export const GRUB_DEFAULT = '/etc/default/grub';
export const GRUB_DROP_IN = '/etc/default/grub.d/phoenix.cfg';
export const KERNEL_CMDLINE = '/etc/kernel/cmdline';

const MODULES_BLOCK = { begin: '# BEGIN phoenix: vfio modules', end: '# END phoenix: vfio modules' };
const REBOOT_REASON = 'the VFIO settings (IOMMU, vfio modules, vfio-pci device ids) apply at the next boot';

/** Drivers that could claim a device of each vendor before vfio-pci does. */
const VENDOR_DRIVERS: Record<string, string[]> = {
  [NVIDIA_VENDOR]: ['nouveau', 'nvidia', 'nvidiafb', 'nvidia_drm'],
  '1002': ['amdgpu', 'radeon'],
  '8086': ['i915'],
};

// ---------------------------------------------------------------- the manifest

export interface VfioSettings {
  deviceIds: string[];
}

/** The VFIO settings, or undefined when the manifest does not ask for VFIO. */
export function vfioSettings(config: HypervisorConfig): VfioSettings | undefined {
  const section = config.vfio;
  if (section === undefined || section.enabled === false) return undefined;
  return { deviceIds: (section.device_ids ?? []).map((id) => id.toLowerCase()) };
}

/**
 * The GPU sections of the manifest, without touching the host: device ids,
 * the NVIDIA driver's version and runfile, and the rule that an NVIDIA
 * device handed to vfio-pci and the NVIDIA host driver exclude each other
 * (the driver would never see the device it was installed for).
 */
export function validateGpu(config: HypervisorConfig, file: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const vfio = vfioSettings(config);
  const ids = vfio?.deviceIds ?? [];
  ids.forEach((id, i) => {
    if (!/^[0-9a-f]{4}:[0-9a-f]{4}$/.test(id)) issues.push({ file, pointer: `/vfio/device_ids/${i}`, message: `'${id}' is not a PCI vendor:device id (four hex digits each, as lspci -nn prints them)` });
    else if (ids.indexOf(id) !== i) issues.push({ file, pointer: `/vfio/device_ids/${i}`, message: `${id} is listed twice` });
  });
  const driver = config.nvidia_driver;
  if (driver?.install === true) {
    const nvidiaIndex = ids.findIndex((id) => id.startsWith(`${NVIDIA_VENDOR}:`));
    if (nvidiaIndex >= 0) {
      const message = `the NVIDIA device ${ids[nvidiaIndex]} is handed to vfio-pci (/vfio/device_ids/${nvidiaIndex}) while the NVIDIA host driver is to be installed (/nvidia_driver/install): the driver could never use it; choose one (set vfio.enabled false, drop the NVIDIA ids, or set nvidia_driver.install false)`;
      issues.push({ file, pointer: `/vfio/device_ids/${nvidiaIndex}`, message });
      issues.push({ file, pointer: '/nvidia_driver/install', message });
    }
    if (!driver.version?.trim()) issues.push({ file, pointer: '/nvidia_driver/version', message: 'the driver version to install is required when nvidia_driver.install is true' });
    const url = driver.runfile_url?.trim();
    if (!url) issues.push({ file, pointer: '/nvidia_driver/runfile_url', message: 'the URL of the NVIDIA .run installer is required when nvidia_driver.install is true' });
    else {
      const name = url.split('?')[0]!.split('/').pop() ?? '';
      if (!name.endsWith('.run')) issues.push({ file, pointer: '/nvidia_driver/runfile_url', message: `'${name}' is not an NVIDIA .run installer` });
      const named = /-(\d+(?:\.\d+)+)\.run$/.exec(name)?.[1];
      if (named !== undefined && driver.version?.trim() && named !== driver.version.trim()) {
        issues.push({ file, pointer: '/nvidia_driver/runfile_url', message: `the runfile is driver ${named}, but nvidia_driver.version is ${driver.version.trim()}` });
      }
    }
  }
  return issues;
}

export function assertGpuConfig(context: SetupContext): void {
  const issues = validateGpu(context.config.hypervisor, context.config.paths.hypervisor);
  if (issues.length > 0) throw new ManifestError(issues);
}

// ---------------------------------------------------------------- the texts

/** The kernel arguments the IOMMU needs (AMD's IOMMU is on by default; pass-through mode keeps host DMA fast). */
export function iommuArguments(vendor: 'intel' | 'amd'): string[] {
  return vendor === 'intel' ? ['intel_iommu=on', 'iommu=pt'] : ['iommu=pt'];
}

/** The vfio modules to load at boot; vfio_virqfd was merged into vfio in kernel 6.2. */
export function vfioModules(release: string): string[] {
  return ['vfio', 'vfio_iommu_type1', 'vfio_pci', ...(kernelOlderThan(release, 6, 2) ? ['vfio_virqfd'] : [])];
}

export function vfioConfText(deviceIds: readonly string[]): string {
  const lines = ['# Written by Phoenix (hypervisor_feature_configure_vfio, from the manifest\'s vfio.device_ids); edits are overwritten.'];
  if (deviceIds.length > 0) {
    lines.push(`options vfio-pci ids=${deviceIds.join(',')}`);
    // vfio-pci loads before any driver that could claim one of these devices first.
    const vendors = [...new Set(deviceIds.map((id) => id.slice(0, 4)))];
    const drivers = [...vendors.flatMap((v) => VENDOR_DRIVERS[v] ?? []), 'snd_hda_intel'];
    for (const driver of drivers) lines.push(`softdep ${driver} pre: vfio-pci`);
  }
  return `${lines.join('\n')}\n`;
}

export function grubDropInText(words: readonly string[]): string {
  return [
    '# Written by Phoenix (hypervisor_feature_configure_vfio); edits are overwritten.',
    '# update-grub reads this after /etc/default/grub: the IOMMU arguments VFIO needs.',
    `GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT ${words.join(' ')}"`,
    '',
  ].join('\n');
}

/** The cmdline file with the missing words appended to its one line; every other byte kept. */
export function withCmdlineWords(text: string, words: readonly string[]): string {
  const end = /\r?\n$/.exec(text)?.[0] ?? '';
  const line = text.slice(0, text.length - end.length);
  const present = new Set(line.split(/\s+/).filter(Boolean));
  const missing = words.filter((w) => !present.has(w));
  if (missing.length === 0) return text;
  const sep = line === '' || /\s$/.test(line) ? '' : ' ';
  return `${line}${sep}${missing.join(' ')}${end || '\n'}`;
}

/** The words GRUB_CMDLINE_LINUX_DEFAULT already holds in /etc/default/grub (so the drop-in does not repeat them). */
function grubDefaultWords(text: string): Set<string> {
  const m = /^\s*GRUB_CMDLINE_LINUX_DEFAULT=(["']?)(.*)\1\s*$/m.exec(text);
  return new Set((m?.[2] ?? '').split(/\s+/).filter(Boolean));
}

// ---------------------------------------------------------------- the boot loader

export type BootLoader = { kind: 'systemd-boot' } | { kind: 'grub'; espManaged: boolean };

/** Where the kernel command line lives: proxmox-boot-tool's ESPs booted by systemd-boot, or GRUB. */
export async function detectBootLoader(): Promise<BootLoader> {
  const status = await query({ cmd: 'proxmox-boot-tool', args: ['status'], allowFailure: true, quiet: true });
  // "E: /etc/kernel/proxmox-boot-uuids does not exist." (exit 2): no ESP is managed, plain GRUB;
  // so is a host without the tool (Debian without Proxmox's boot packages).
  if (status.code === 127 || (status.code !== 0 && /proxmox-boot-uuids does not exist/.test(status.stderr + status.stdout))) return { kind: 'grub', espManaged: false };
  if (status.code !== 0) throw new PhoenixError(`proxmox-boot-tool status failed (exit ${status.code}): ${status.stderr.trim()}`, { hint: 'cannot tell where the kernel command line lives; nothing was changed' });
  if (/is configured with: uefi/.test(status.stdout)) return { kind: 'systemd-boot' };
  return { kind: 'grub', espManaged: /is configured with: grub/.test(status.stdout) };
}

async function kernelCommandLine(options: PhoenixOptions, words: readonly string[], changes: string[]): Promise<void> {
  const loader = await detectBootLoader();
  if (loader.kind === 'systemd-boot') {
    const file = hostFile(options, KERNEL_CMDLINE);
    const current = readIfExists(file)?.toString('utf8') ?? '';
    const next = withCmdlineWords(current, words);
    if (next !== current) {
      const mode = fs.existsSync(file) ? fs.statSync(file).mode & 0o7777 : 0o644;
      writeFileAtomic(file, next, { mode });
      changes.push(`added ${words.filter((w) => !current.split(/\s+/).includes(w)).join(' ')} to ${KERNEL_CMDLINE}`);
      await run({ cmd: 'proxmox-boot-tool', args: ['refresh'], timeoutMs: 10 * 60_000 });
    }
    return;
  }
  const grub = readIfExists(hostFile(options, GRUB_DEFAULT))?.toString('utf8') ?? '';
  const already = grubDefaultWords(grub);
  const wanted = words.filter((w) => !already.has(w));
  const dropIn = hostFile(options, GRUB_DROP_IN);
  let outcome: 'created' | 'changed' | 'unchanged' | 'removed' = 'unchanged';
  if (wanted.length > 0) outcome = writeFileAtomic(dropIn, grubDropInText(wanted), { mode: 0o644 });
  // /etc/default/grub already says it all: the drop-in would only repeat it.
  else if (removeFile(dropIn) === 'removed') outcome = 'removed';
  if (outcome === 'unchanged') return;
  changes.push(outcome === 'removed' ? `removed ${GRUB_DROP_IN} (/etc/default/grub already has ${words.join(' ')})` : `${outcome === 'created' ? 'created' : 'updated'} ${GRUB_DROP_IN} (${wanted.join(' ')})`);
  if (loader.espManaged) await run({ cmd: 'proxmox-boot-tool', args: ['refresh'], timeoutMs: 10 * 60_000 });
  else await run({ cmd: 'update-grub', timeoutMs: 10 * 60_000 });
}

// ---------------------------------------------------------------- the steps

interface VfioParts {
  iommu: boolean;
  deviceIds: boolean;
}

async function applyVfio(context: SetupContext, parts: VfioParts): Promise<StepResult> {
  assertGpuConfig(context);
  const settings = vfioSettings(context.config.hypervisor);
  if (settings === undefined) {
    return { changes: [], skipped: `VFIO is not asked for: ${context.config.hypervisor.vfio === undefined ? 'the manifest has no vfio section' : 'vfio.enabled is false'}` };
  }
  const { options } = context;
  const changes: string[] = [];

  const devices = await pciDevices();
  if (parts.deviceIds) {
    // A listed id that no device has is most likely a typo; say so, it changes nothing.
    const present = new Set(devices.map((d) => `${d.vendor}:${d.device}`));
    const absent = settings.deviceIds.filter((id) => !present.has(id));
    for (const id of absent) warn(`vfio.device_ids: no PCI device ${id} on this host (lspci -Dnn); the setting is written anyway`);
  }

  if (parts.iommu) await kernelCommandLine(options, iommuArguments(cpuVendor(options)), changes);

  let modulesChanged = false;
  const modules = vfioModules(kernelRelease(options));
  const modOutcome = ensureOwnedBlock(hostFile(options, MODULES_FILE), { ...MODULES_BLOCK, lines: modules, createMode: 0o644 });
  if (modOutcome !== 'unchanged') {
    modulesChanged = true;
    changes.push(`${MODULES_FILE}: vfio modules loaded at boot (${modules.join(', ')})`);
  }
  if (parts.deviceIds) {
    const outcome = writeFileAtomic(hostFile(options, VFIO_CONF), vfioConfText(settings.deviceIds), { mode: 0o644 });
    if (outcome !== 'unchanged') modulesChanged = true;
    fileChange(changes, outcome, VFIO_CONF, settings.deviceIds.length > 0 ? `vfio-pci ids=${settings.deviceIds.join(',')}` : 'no device ids');
  }
  const nvidiaListed = settings.deviceIds.some((id) => id.startsWith(`${NVIDIA_VENDOR}:`));
  if (nvidiaListed || !parts.deviceIds) {
    const outcome = writeNouveauBlacklist(options);
    if (outcome !== 'unchanged') modulesChanged = true;
    fileChange(changes, outcome, NOUVEAU_BLACKLIST, 'blacklist nouveau');
  }
  if (modulesChanged) {
    await updateInitramfs();
    changes.push('rebuilt the initramfs (update-initramfs -u -k all)');
  }
  if (changes.length === 0) return { changes };
  return { changes, reboot: { reason: REBOOT_REASON, stop: false } };
}

/** Setup step 6 (hypervisor_feature_configure_vfio.sh): IOMMU, modules, vfio-pci ids. */
export function configureVfio(context: SetupContext): Promise<StepResult> {
  return applyVfio(context, { iommu: true, deviceIds: true });
}

/**
 * The orphan hypervisor_feature_setup_vfio.sh: only the modules and the
 * nouveau blacklist (its nvidiafb line is already in Proxmox's own
 * pve-blacklist.conf), under the same manifest switch.
 */
export function setupVfioModules(context: SetupContext): Promise<StepResult> {
  return applyVfio(context, { iommu: false, deviceIds: false });
}
