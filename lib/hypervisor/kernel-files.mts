// What the kernel steps of `phoenix setup` (VFIO, the NVIDIA driver) share:
// the host's PCI devices, its running kernel and CPU vendor, the nouveau
// blacklist both steps need, and the initramfs rebuild that makes module
// configuration reach the early boot.
//
// The kernel's own files (/proc) are read under the host root, so the
// simulated host answers in tests; on a real host that is `/`.

import fs from 'node:fs';
import { query, run } from '../core/runner.mts';
import { PhoenixError } from '../core/errors.mts';
import { writeFileAtomic, type WriteOutcome } from '../core/fs.mts';
import type { PhoenixOptions } from '../core/env.mts';
import { hostFile } from './host.mts';

export const NVIDIA_VENDOR = '10de';

export interface PciDevice {
  /** Domain:bus:device.function, e.g. 0000:01:00.0. */
  slot: string;
  /** Class code, e.g. 0300 (VGA) or 0302 (3D controller). */
  classCode: string;
  className: string;
  vendor: string;
  device: string;
  name: string;
}

/** One line of `lspci -Dnn`: `0000:01:00.0 VGA compatible controller [0300]: NVIDIA … [10de:1e84] (rev a1)`. */
const LSPCI_LINE = /^(\S+) (.*?) \[([0-9a-f]{4})\]: (.*) \[([0-9a-f]{4}):([0-9a-f]{4})\](?: \(rev [0-9a-f]+\))?(?: \(prog-if .*\))?$/i;

export function parseLspci(text: string): PciDevice[] {
  const devices: PciDevice[] = [];
  for (const line of text.split('\n')) {
    const m = LSPCI_LINE.exec(line.trim());
    if (!m) continue;
    devices.push({ slot: m[1]!, className: m[2]!, classCode: m[3]!.toLowerCase(), name: m[4]!, vendor: m[5]!.toLowerCase(), device: m[6]!.toLowerCase() });
  }
  return devices;
}

/** The host's PCI devices (read-only; runs in dry-run too). */
export async function pciDevices(): Promise<PciDevice[]> {
  const result = await query({ cmd: 'lspci', args: ['-Dnn'], quiet: true });
  return parseLspci(result.stdout);
}

/** Display controllers (class 03xx) made by NVIDIA. */
export function nvidiaGpus(devices: readonly PciDevice[]): PciDevice[] {
  return devices.filter((d) => d.vendor === NVIDIA_VENDOR && d.classCode.startsWith('03'));
}

function readProc(options: PhoenixOptions, procPath: string): string {
  const file = hostFile(options, procPath);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new PhoenixError(`cannot read ${file}: ${(err as Error).message}`, { hint: 'the kernel steps read the running kernel from /proc' });
  }
}

/** The running kernel's release (what `uname -r` prints), e.g. 6.8.12-4-pve. */
export function kernelRelease(options: PhoenixOptions): string {
  return readProc(options, '/proc/sys/kernel/osrelease').trim();
}

/** Whether release `a.b…` is older than major.minor. */
export function kernelOlderThan(release: string, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const [maj, min] = [Number(m[1]), Number(m[2])];
  return maj < major || (maj === major && min < minor);
}

export type CpuVendor = 'intel' | 'amd';

export function cpuVendor(options: PhoenixOptions): CpuVendor {
  const text = readProc(options, '/proc/cpuinfo');
  const id = /^vendor_id\s*:\s*(\S+)/m.exec(text)?.[1];
  if (id === 'GenuineIntel') return 'intel';
  if (id === 'AuthenticAMD' || id === 'HygonGenuine') return 'amd';
  throw new PhoenixError(`unknown CPU vendor ${id === undefined ? '(no vendor_id in /proc/cpuinfo)' : `'${id}'`}: cannot tell which IOMMU option the kernel needs`);
}

// ---------------------------------------------------------------- files Phoenix owns in /etc/modprobe.d

/** The nouveau blacklist, shared by the VFIO step and the NVIDIA driver step (one file, one owner). */
export const NOUVEAU_BLACKLIST = '/etc/modprobe.d/phoenix-blacklist-nouveau.conf';

export function nouveauBlacklistText(): string {
  return [
    '# Written by Phoenix (hypervisor_feature_configure_vfio / install_nvidia); edits are overwritten.',
    '# nouveau must not claim NVIDIA GPUs: they belong to vfio-pci or to the NVIDIA driver.',
    'blacklist nouveau',
    'options nouveau modeset=0',
    '',
  ].join('\n');
}

export function writeNouveauBlacklist(options: PhoenixOptions): WriteOutcome {
  return writeFileAtomic(hostFile(options, NOUVEAU_BLACKLIST), nouveauBlacklistText(), { mode: 0o644 });
}

/** Rebuild every initramfs, so module options and blacklists apply from the early boot on. */
export async function updateInitramfs(): Promise<void> {
  await run({ cmd: 'update-initramfs', args: ['-u', '-k', 'all'], timeoutMs: 15 * 60_000 });
}
