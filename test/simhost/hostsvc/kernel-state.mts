// The simulated host's kernel, boot loader and GPU, kept in host-kernel.json
// (the tools that read and change it are in kernel.mts):
//
//   { cpuVendor, release, bootLoader: "grub"|"systemd-boot", pci: [...],
//     loaded: [modules], cmdline, nvidia: { installed?, pending?, dkms? },
//     staged: { cmdline?, initramfs? } }
//
// Missing file = a fresh Proxmox VE 8 node: Intel CPU, kernel 6.8.12-4-pve,
// GRUB, no GPU. What changes the boot (a kernel command line, module
// options, a driver) is staged by the tool that writes it and only applies
// in rebootSimHost, which also empties <hostfs>/run, as a reboot does.
// The kernel's own files (/proc/cpuinfo, /proc/sys/kernel/osrelease,
// /proc/cmdline, /proc/modules) are written under the host root from the
// state on every call of these tools (ensureKernelTree).

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { atomicWrite, readJson, withStateLock } from '../state.mts';
import { hostRootOf, onHostRoot, type HostToolContext } from './context.mts';
import { ensureApparmorTree } from './apparmor-tree.mts';

export interface SimPciDevice {
  slot: string;
  classCode: string;
  className: string;
  vendor: string;
  device: string;
  name: string;
  rev?: string;
}

export interface KernelState {
  cpuVendor: 'GenuineIntel' | 'AuthenticAMD';
  release: string;
  bootLoader: 'grub' | 'systemd-boot';
  pci: SimPciDevice[];
  loaded: string[];
  cmdline: string;
  nvidia: { installed?: string; pending?: string; dkms?: boolean };
  staged: { cmdline?: string; initramfs?: string };
  /** The stock files of a fresh node were written under the host root. */
  seeded?: boolean;
}

export const NODE_PCI: SimPciDevice[] = [
  { slot: '0000:00:00.0', classCode: '0600', className: 'Host bridge', vendor: '8086', device: '3e0f', name: 'Intel Corporation 8th Gen Core 4-core Desktop Processor Host Bridge/DRAM Registers [Coffee Lake S]', rev: '08' },
  { slot: '0000:00:14.0', classCode: '0c03', className: 'USB controller', vendor: '8086', device: 'a36d', name: 'Intel Corporation Cannon Lake PCH USB 3.1 xHCI Host Controller', rev: '10' },
  { slot: '0000:00:17.0', classCode: '0106', className: 'SATA controller', vendor: '8086', device: 'a352', name: 'Intel Corporation Cannon Lake PCH SATA AHCI Controller', rev: '10' },
  { slot: '0000:03:00.0', classCode: '0200', className: 'Ethernet controller', vendor: '8086', device: '1533', name: 'Intel Corporation I210 Gigabit Network Connection', rev: '03' },
];

/** An NVIDIA card as lspci shows it: the GPU and its audio function. */
export const NVIDIA_RTX_2070_SUPER: SimPciDevice[] = [
  { slot: '0000:01:00.0', classCode: '0300', className: 'VGA compatible controller', vendor: '10de', device: '1e84', name: 'NVIDIA Corporation TU104 [GeForce RTX 2070 SUPER]', rev: 'a1' },
  { slot: '0000:01:00.1', classCode: '0403', className: 'Audio device', vendor: '10de', device: '10f8', name: 'NVIDIA Corporation TU104 HD Audio Controller', rev: 'a1' },
];

export const BASE_MODULES = ['zfs', 'spl', 'kvm_intel', 'kvm', 'bridge', 'stp', 'llc', 'xhci_pci', 'ahci', 'igb'];
const RELEASE = '6.8.12-4-pve';

function kernelFile(root: string): string {
  return path.join(root, 'host-kernel.json');
}

export function loadKernel(root: string): KernelState {
  const state = readJson<Partial<KernelState> | null>(kernelFile(root), null) ?? {};
  const release = state.release ?? RELEASE;
  const bootLoader = state.bootLoader ?? 'grub';
  return {
    cpuVendor: state.cpuVendor ?? 'GenuineIntel',
    release,
    bootLoader,
    pci: state.pci ?? NODE_PCI,
    loaded: state.loaded ?? bootModules(state.pci ?? NODE_PCI, state.nvidia?.installed, ''),
    cmdline: state.cmdline ?? (bootLoader === 'grub' ? `BOOT_IMAGE=/boot/vmlinuz-${release} root=/dev/mapper/pve-root ro quiet` : `initrd=\\EFI\\proxmox\\${release}\\initrd.img-${release} root=ZFS=rpool/ROOT/pve-1 boot=zfs`),
    nvidia: state.nvidia ?? {},
    staged: state.staged ?? {},
    ...(state.seeded ? { seeded: true } : {}),
  };
}

export function saveKernel(root: string, state: KernelState): void {
  atomicWrite(kernelFile(root), `${JSON.stringify(state, null, 2)}\n`);
}

/** Change the simulated node's hardware or boot set-up (tests): the state merged with `patch`. */
export function setKernelState(root: string, patch: Partial<KernelState>): KernelState {
  return withStateLock(root, () => {
    const state = { ...loadKernel(root), ...patch };
    if (patch.pci && !patch.loaded) state.loaded = bootModules(state.pci, state.nvidia.installed, '');
    saveKernel(root, state);
    return state;
  });
}

// ---------------------------------------------------------------- the host tree

const STOCK_MODULES = '# /etc/modules: kernel modules to load at boot time.\n#\n# This file contains the names of kernel modules that should be loaded\n# at boot time, one per line. Lines beginning with "#" are ignored.\n# Parameters can be specified after the module name.\n\n';
const STOCK_GRUB = `# If you change this file, run 'update-grub' afterwards to update
# /boot/grub/grub.cfg.
# For full documentation of the options in this file, see:
#   info -f grub -n 'Simple configuration'

GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR="Proxmox VE"
GRUB_CMDLINE_LINUX_DEFAULT="quiet"
GRUB_CMDLINE_LINUX=""

# If your computer has multiple operating systems installed, then you
# probably want to run os-prober. However, if you have a RAID setup, then
# this is not useful, so we disable it.
GRUB_DISABLE_OS_PROBER=true
`;
const PVE_BLACKLIST = '# This file contains a list of modules which are not supported by Proxmox VE \n\n# nvidiafb see bugreport https://bugzilla.proxmox.com/show_bug.cgi?id=701\nblacklist nvidiafb\n';

function writeIfMissing(hostRoot: string, hostPath: string, text: string): void {
  const file = onHostRoot(hostRoot, hostPath);
  if (fs.existsSync(file)) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text, { mode: 0o644 });
}

function writeProc(hostRoot: string, hostPath: string, text: string): void {
  const file = onHostRoot(hostRoot, hostPath);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  if (fs.existsSync(file) && fs.readFileSync(file, 'utf8') === text) return;
  fs.writeFileSync(file, text, { mode: 0o444 });
}

/** The node's stock boot files (once) and the kernel's /proc files (always, from the state). */
export function ensureKernelTree(root: string, hostRoot: string, state: KernelState): void {
  if (!state.seeded) {
    writeIfMissing(hostRoot, '/etc/modules', STOCK_MODULES);
    writeIfMissing(hostRoot, '/etc/modprobe.d/pve-blacklist.conf', PVE_BLACKLIST);
    if (state.bootLoader === 'grub') writeIfMissing(hostRoot, '/etc/default/grub', STOCK_GRUB);
    else {
      writeIfMissing(hostRoot, '/etc/kernel/cmdline', 'root=ZFS=rpool/ROOT/pve-1 boot=zfs\n');
      writeIfMissing(hostRoot, '/etc/kernel/proxmox-boot-uuids', '3C1E-1F2D\n');
    }
    ensureApparmorTree(hostRoot);
    state.seeded = true;
    saveKernel(root, state);
  }
  const vendor = state.cpuVendor;
  writeProc(hostRoot, '/proc/cpuinfo', `processor\t: 0\nvendor_id\t: ${vendor}\ncpu family\t: ${vendor === 'GenuineIntel' ? 6 : 25}\nmodel name\t: ${vendor === 'GenuineIntel' ? 'Intel(R) Core(TM) i7-9700K CPU @ 3.60GHz' : 'AMD Ryzen 9 5950X 16-Core Processor'}\nflags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep ${vendor === 'GenuineIntel' ? 'vmx' : 'svm'}\n\n`);
  writeProc(hostRoot, '/proc/sys/kernel/osrelease', `${state.release}\n`);
  writeProc(hostRoot, '/proc/cmdline', `${state.cmdline}\n`);
  writeProc(hostRoot, '/proc/modules', state.loaded.map((m) => `${m} 16384 0 - Live 0x0000000000000000\n`).join(''));
}

export function withKernel<T>(ctx: HostToolContext, fn: (state: KernelState) => T): T {
  return withStateLock(ctx.root, () => {
    const state = loadKernel(ctx.root);
    ensureKernelTree(ctx.root, ctx.hostRoot, state);
    const result = fn(state);
    saveKernel(ctx.root, state);
    ensureKernelTree(ctx.root, ctx.hostRoot, state);
    return result;
  });
}

/**
 * Give a simulated node the files a real one has from its installer (the
 * stock /etc/modules, /etc/default/grub, AppArmor's tree, /proc): tests call
 * it after createSimHost (and seed.mts could); the tools here also do it on
 * their first call.
 */
export function ensureSimNode(stateDir: string, env: NodeJS.ProcessEnv = process.env): void {
  const hostRoot = hostRootOf(stateDir, env);
  withStateLock(stateDir, () => {
    const state = loadKernel(stateDir);
    ensureKernelTree(stateDir, hostRoot, state);
    ensureApparmorTree(hostRoot);
    saveKernel(stateDir, state);
  });
}

// ---------------------------------------------------------------- what a boot loads

/** The words of the modprobe configuration (/etc/modprobe.d/*.conf) and /etc/modules, as boot reads them. */
export function moduleConfig(hostRoot: string): { blacklist: Set<string>; vfioIds: Set<string>; modules: string[]; hash: string } {
  const dir = onHostRoot(hostRoot, '/etc/modprobe.d');
  const blacklist = new Set<string>();
  const vfioIds = new Set<string>();
  const hash = crypto.createHash('sha256');
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.conf')).sort() : [];
  for (const name of files) {
    const text = fs.readFileSync(path.join(dir, name), 'utf8');
    hash.update(`${name}\0${text}\0`);
    for (const line of text.split('\n')) {
      const words = line.replace(/#.*/, '').trim().split(/\s+/);
      if (words[0] === 'blacklist' && words[1]) blacklist.add(words[1].replace(/-/g, '_'));
      if (words[0] === 'options' && words[1]?.replace(/-/g, '_') === 'vfio_pci') {
        for (const opt of words.slice(2)) if (opt.startsWith('ids=')) for (const id of opt.slice(4).split(',')) if (id) vfioIds.add(id.toLowerCase());
      }
    }
  }
  const modulesText = fs.existsSync(onHostRoot(hostRoot, '/etc/modules')) ? fs.readFileSync(onHostRoot(hostRoot, '/etc/modules'), 'utf8') : '';
  hash.update(`modules\0${modulesText}`);
  const modules = modulesText.split('\n').map((l) => l.replace(/#.*/, '').trim().split(/\s+/)[0] ?? '').filter(Boolean);
  return { blacklist, vfioIds, modules, hash: hash.digest('hex') };
}

function bootModules(pci: readonly SimPciDevice[], driver: string | undefined, hostRoot: string): string[] {
  const config = hostRoot === '' ? { blacklist: new Set<string>(), vfioIds: new Set<string>(), modules: [] as string[] } : moduleConfig(hostRoot);
  const loaded = [...BASE_MODULES, ...config.modules];
  const nvidia = pci.filter((d) => d.vendor === '10de' && d.classCode.startsWith('03'));
  const toVfio = nvidia.filter((d) => config.vfioIds.has(`${d.vendor}:${d.device}`));
  if (toVfio.length > 0) loaded.push('vfio_pci', 'vfio_iommu_type1', 'vfio');
  if (nvidia.length > toVfio.length) {
    if (driver !== undefined && !config.blacklist.has('nvidia')) loaded.push('nvidia', 'nvidia_modeset', 'nvidia_drm', 'nvidia_uvm');
    else if (!config.blacklist.has('nouveau')) loaded.push('nouveau');
  }
  return [...new Set(loaded)];
}

/**
 * Reboot the simulated node: /run emptied, the staged kernel command line
 * and initramfs in effect, a pending NVIDIA driver installed, the modules a
 * boot loads loaded.
 */
export function rebootSimHost(stateDir: string, env: NodeJS.ProcessEnv = process.env): void {
  const hostRoot = hostRootOf(stateDir, env);
  withStateLock(stateDir, () => {
    const state = loadKernel(stateDir);
    fs.rmSync(onHostRoot(hostRoot, '/run'), { recursive: true, force: true });
    fs.mkdirSync(onHostRoot(hostRoot, '/run'), { recursive: true });
    if (state.staged.cmdline !== undefined) state.cmdline = state.staged.cmdline;
    if (state.nvidia.pending !== undefined) {
      state.nvidia.installed = state.nvidia.pending;
      delete state.nvidia.pending;
    }
    state.staged = {};
    state.loaded = bootModules(state.pci, state.nvidia.installed, hostRoot);
    saveKernel(stateDir, state);
    ensureKernelTree(stateDir, hostRoot, state);
  });
}

