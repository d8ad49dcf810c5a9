// The host's kernel tools: `lspci`, `nvidia-smi`, the NVIDIA installer
// (`nvidia-runfile`, what the simulated curl's *.run files exec),
// `modprobe`, `rmmod`, `depmod`, `update-grub`, `update-initramfs` and
// `proxmox-boot-tool`, over the state in kernel-state.mts
// (host-kernel.json): what changes the boot is staged here and applied by
// rebootSimHost.

import fs from 'node:fs';
import path from 'node:path';

import { ToolExit } from '../state.mts';
import { onHostRoot, type HostToolContext } from './context.mts';
import { loadPackages } from './packages.mts';
import { BASE_MODULES, moduleConfig, withKernel } from './kernel-state.mts';

export { ensureSimNode, loadKernel, NODE_PCI, NVIDIA_RTX_2070_SUPER, rebootSimHost, setKernelState, type KernelState, type SimPciDevice } from './kernel-state.mts';

// ---------------------------------------------------------------- the tools

export function runLspci(ctx: HostToolContext): void {
  let domains = false;
  let numeric: 0 | 1 | 2 = 0;
  for (const arg of ctx.argv) {
    if (arg === '-D') domains = true;
    else if (arg === '-n') numeric = 1;
    else if (arg === '-nn') numeric = 2;
    else if (arg === '-Dnn') [domains, numeric] = [true, 2];
    else throw new ToolExit(2, `lspci: simhost: option ${arg} is not simulated\n`);
  }
  const pci = withKernel(ctx, (state) => state.pci);
  for (const d of [...pci].sort((a, b) => a.slot.localeCompare(b.slot))) {
    const slot = domains ? d.slot : d.slot.replace(/^0000:/, '');
    const rev = d.rev ? ` (rev ${d.rev})` : '';
    if (numeric === 1) ctx.out(`${slot} ${d.classCode}: ${d.vendor}:${d.device}${rev}\n`);
    else if (numeric === 2) ctx.out(`${slot} ${d.className} [${d.classCode}]: ${d.name} [${d.vendor}:${d.device}]${rev}\n`);
    else ctx.out(`${slot} ${d.className}: ${d.name}${rev}\n`);
  }
}

const SMI_FAILED = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n\n";

export function runNvidiaSmi(ctx: HostToolContext): void {
  const state = withKernel(ctx, (s) => s);
  const userland = state.nvidia.pending ?? state.nvidia.installed;
  // Without the installer the program does not exist: the shell's answer.
  if (userland === undefined) throw new ToolExit(127, `bash: line 1: nvidia-smi: command not found\n`);
  if (!state.loaded.includes('nvidia')) throw new ToolExit(9, '', SMI_FAILED);
  if (state.nvidia.installed !== userland) throw new ToolExit(18, '', 'Failed to initialize NVML: Driver/library version mismatch\nNVML library version: ' + userland + '\n');
  const gpus = state.pci.filter((d) => d.vendor === '10de' && d.classCode.startsWith('03'));
  const query = ctx.argv.find((a) => a.startsWith('--query-gpu='))?.slice('--query-gpu='.length);
  const format = ctx.argv.find((a) => a.startsWith('--format='))?.slice('--format='.length).split(',') ?? [];
  if (query !== undefined) {
    if (!format.includes('csv')) throw new ToolExit(2, '', '"--format=" switch is missing. Please try again.\n');
    const fields = query.split(',');
    if (!format.includes('noheader')) ctx.out(`${fields.join(', ')}\n`);
    for (const gpu of gpus) {
      ctx.out(`${fields.map((f) => (f === 'driver_version' ? userland : f === 'name' ? gpu.name.replace(/^.*\[(.*)\]$/, 'NVIDIA $1') : f === 'pci.bus_id' ? gpu.slot.toUpperCase().replace(/^0000/, '00000000') : '[N/A]')).join(', ')}\n`);
    }
    return;
  }
  ctx.out(`+-----------------------------------------------------------------------------------------+\n| NVIDIA-SMI ${userland}              Driver Version: ${userland}                                  |\n+-----------------------------------------------------------------------------------------+\n`);
}

const RUNFILE_OPTIONS = new Set(['--silent', '-s', '--accept-license', '-a', '--dkms', '--no-dkms', '--no-x-check', '--no-nouveau-check', '--no-opengl-files', '--disable-nouveau', '--no-questions', '-q', '--ui=none', '--no-drm', '--no-kernel-module-source']);

/** The NVIDIA .run installer: `nvidia-runfile --url <url> [installer options]`. */
export function runNvidiaRunfile(ctx: HostToolContext): void {
  const [flag, url, ...args] = ctx.argv;
  if (flag !== '--url' || url === undefined) throw new ToolExit(2, 'simhost: nvidia-runfile needs --url <url> first\n');
  const version = /-(\d+(?:\.\d+)+)\.run(?:\?.*)?$/.exec(url)?.[1];
  if (version === undefined) throw new ToolExit(1, `Verifying archive integrity... Error in checksums: the archive ${url.split('/').pop()} is corrupt\n`);
  for (const arg of args) if (!RUNFILE_OPTIONS.has(arg)) throw new ToolExit(1, `ERROR: Unrecognized option: '${arg}'.\n`);
  const header = `Verifying archive integrity... OK\nUncompressing NVIDIA Accelerated Graphics Driver for Linux-x86_64 ${version}...\n`;
  const fail = (message: string): never => {
    throw new ToolExit(1, `\nERROR: ${message}\n\nERROR: Installation has failed.  Please see the file '/var/log/nvidia-installer.log' for details.\n`, header);
  };
  withKernel(ctx, (state) => {
    const installed = loadPackages(ctx.root).installed;
    if (state.loaded.includes('nvidia')) fail("An NVIDIA kernel module 'nvidia' appears to already be loaded in your kernel.  This may be because it is in use (for example, by an X server, a CUDA program, or the NVIDIA Persistence Daemon), but this may also happen if your kernel was configured without support for module unloading.  Please be sure to exit any programs that may be using the GPU(s) before attempting to upgrade your driver.");
    if (state.loaded.includes('nouveau') && !args.includes('--no-nouveau-check') && !args.includes('--disable-nouveau')) fail('The Nouveau kernel driver is currently in use by your system.  This driver is incompatible with the NVIDIA driver, and must be disabled before proceeding.');
    if (!Object.hasOwn(installed, 'build-essential')) fail('Unable to find the system utility `cc`; please make sure you have the package \'cc\' installed.  If you do have cc installed, then please check that `cc` is in your PATH.');
    if (!Object.hasOwn(installed, `proxmox-headers-${state.release}`) && !Object.hasOwn(installed, `pve-headers-${state.release}`)) fail('Unable to find the kernel source tree for the currently running kernel.  Please make sure you have installed the kernel source files for your kernel and that they are properly configured; on Red Hat Linux systems, for example, be sure you have the \'kernel-source\' or \'kernel-devel\' RPM installed.  If you know the correct kernel source files are installed, you may specify the kernel source path with the \'--kernel-source-path\' command line option.');
    if (args.includes('--dkms') && !Object.hasOwn(installed, 'dkms')) fail('Failed to run `dkms status`: dkms: command not found');
    state.nvidia.pending = version;
    state.nvidia.dkms = args.includes('--dkms');
    const smi = onHostRoot(ctx.hostRoot, '/usr/bin/nvidia-smi');
    fs.mkdirSync(path.dirname(smi), { recursive: true });
    fs.writeFileSync(smi, `#!/bin/sh\n# simulated: NVIDIA ${version} userland\nexec nvidia-smi "$@"\n`, { mode: 0o755 });
  });
  ctx.out(header);
}

export function runModprobe(ctx: HostToolContext): void {
  const remove = ctx.argv.includes('-r') || ctx.argv.includes('--remove');
  const names = ctx.argv.filter((a) => !a.startsWith('-'));
  if (names.length === 0) throw new ToolExit(1, 'modprobe: ERROR: missing parameters. See -h.\n');
  withKernel(ctx, (state) => {
    const available = new Set([...BASE_MODULES, 'vfio', 'vfio_pci', 'vfio_iommu_type1', 'nouveau', ...(state.nvidia.installed || state.nvidia.pending ? ['nvidia', 'nvidia_modeset', 'nvidia_drm', 'nvidia_uvm'] : [])]);
    for (const raw of remove ? names : names.slice(0, 1)) {
      const name = raw.replace(/-/g, '_');
      if (remove) state.loaded = state.loaded.filter((m) => m !== name);
      else if (!available.has(name)) throw new ToolExit(1, `modprobe: FATAL: Module ${raw} not found in directory /lib/modules/${state.release}\n`);
      else if (!state.loaded.includes(name)) state.loaded.push(name);
    }
  });
}

export function runRmmod(ctx: HostToolContext): void {
  const names = ctx.argv.filter((a) => !a.startsWith('-'));
  let failed = false;
  withKernel(ctx, (state) => {
    for (const name of names.map((n) => n.replace(/-/g, '_'))) {
      if (!state.loaded.includes(name)) {
        ctx.err(`rmmod: ERROR: Module ${name} is not currently loaded\n`);
        failed = true;
      } else state.loaded = state.loaded.filter((m) => m !== name);
    }
  });
  if (failed) throw new ToolExit(1, '');
}

export function runDepmod(ctx: HostToolContext): void {
  withKernel(ctx, () => undefined);
}

/** What update-grub puts on the kernel line: /etc/default/grub, then /etc/default/grub.d/*.cfg, as its shell would read them. */
export function grubCmdline(hostRoot: string): string {
  const files = [onHostRoot(hostRoot, '/etc/default/grub')];
  const dropIns = onHostRoot(hostRoot, '/etc/default/grub.d');
  if (fs.existsSync(dropIns)) for (const f of fs.readdirSync(dropIns).filter((n) => n.endsWith('.cfg')).sort()) files.push(path.join(dropIns, f));
  const vars: Record<string, string> = {};
  for (const file of files) {
    if (!fs.existsSync(file)) continue;
    fs.readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      const m = /^\s*([A-Z_][A-Z0-9_]*)=(?:"([^"]*)"|'([^']*)'|(\S*))\s*(?:#.*)?$/.exec(line);
      if (!m) {
        if (line.trim() !== '' && !line.trim().startsWith('#')) throw new ToolExit(1, `${file.slice(hostRoot.length)}: line ${i + 1}: syntax error near unexpected token\n`);
        return;
      }
      const value = m[2] !== undefined ? m[2].replace(/\$\{?([A-Z_][A-Z0-9_]*)\}?/g, (_s, v: string) => vars[v] ?? '') : (m[3] ?? m[4] ?? '');
      vars[m[1]!] = value;
    });
  }
  return [vars.GRUB_CMDLINE_LINUX ?? '', vars.GRUB_CMDLINE_LINUX_DEFAULT ?? ''].join(' ').trim().replace(/\s+/g, ' ');
}

export function runUpdateGrub(ctx: HostToolContext): void {
  if (ctx.argv.length > 0) throw new ToolExit(1, `Usage: update-grub\n`);
  withKernel(ctx, (state) => {
    const line = grubCmdline(ctx.hostRoot);
    if (state.bootLoader === 'grub') state.staged.cmdline = `BOOT_IMAGE=/boot/vmlinuz-${state.release} root=/dev/mapper/pve-root ro ${line}`.trim();
    ctx.err(`Generating grub configuration file ...\nFound linux image: /boot/vmlinuz-${state.release}\nFound initrd image: /boot/initrd.img-${state.release}\nAdding boot menu entry for UEFI Firmware Settings ...\ndone\n`);
  });
}

export function runUpdateInitramfs(ctx: HostToolContext): void {
  let mode: string | undefined;
  let version: string | undefined;
  for (let i = 0; i < ctx.argv.length; i++) {
    const arg = ctx.argv[i]!;
    if (arg === '-u' || arg === '-c' || arg === '-d') mode = arg;
    else if (arg === '-k') version = ctx.argv[++i];
    else if (arg !== '-v' && arg !== '-t') throw new ToolExit(1, `Usage: update-initramfs {-c|-d|-u} [-k version] [-v] [-b directory]\n`);
  }
  if (mode === undefined) throw new ToolExit(1, `Usage: update-initramfs {-c|-d|-u} [-k version] [-v] [-b directory]\n`);
  withKernel(ctx, (state) => {
    state.staged.initramfs = moduleConfig(ctx.hostRoot).hash;
    const versions = version === 'all' || version === undefined ? [state.release] : [version];
    for (const v of versions) ctx.out(`update-initramfs: Generating /boot/initrd.img-${v}\n`);
    if (state.bootLoader === 'systemd-boot') ctx.out('Running hook script \'zz-proxmox-boot\'..\nRe-executing \'/etc/kernel/postinst.d/zz-proxmox-boot\' in new private mount namespace..\nCopying and configuring kernels on /dev/disk/by-uuid/3C1E-1F2D\n');
  });
}

export function runProxmoxBootTool(ctx: HostToolContext): void {
  const [verb] = ctx.argv;
  withKernel(ctx, (state) => {
    const managed = fs.existsSync(onHostRoot(ctx.hostRoot, '/etc/kernel/proxmox-boot-uuids'));
    ctx.out("Re-executing '/usr/sbin/proxmox-boot-tool' in new private mount namespace..\n");
    if (verb === 'status') {
      if (!managed) throw new ToolExit(2, 'E: /etc/kernel/proxmox-boot-uuids does not exist.\n');
      ctx.out(`System currently booted with uefi\n3C1E-1F2D is configured with: ${state.bootLoader === 'systemd-boot' ? 'uefi' : 'grub'} (versions: ${state.release})\n`);
      return;
    }
    if (verb === 'refresh') {
      if (!managed) {
        ctx.out('No /etc/kernel/proxmox-boot-uuids found, skipping ESP sync.\n');
        return;
      }
      ctx.out(`Running hook script 'proxmox-auto-removal'..\nRunning hook script 'zz-proxmox-boot'..\nCopying and configuring kernels on /dev/disk/by-uuid/3C1E-1F2D\n\tCopying kernel and creating boot-entry for ${state.release}\n`);
      if (state.bootLoader === 'systemd-boot') {
        const file = onHostRoot(ctx.hostRoot, '/etc/kernel/cmdline');
        const line = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n')[0]!.trim() : '';
        state.staged.cmdline = `initrd=\\EFI\\proxmox\\${state.release}\\initrd.img-${state.release} ${line}`.trim();
      } else state.staged.cmdline = `BOOT_IMAGE=/boot/vmlinuz-${state.release} root=ZFS=rpool/ROOT/pve-1 ro ${grubCmdline(ctx.hostRoot)}`.trim();
      return;
    }
    throw new ToolExit(1, `USAGE: proxmox-boot-tool <commands> [ARGS]\n`);
  });
}

