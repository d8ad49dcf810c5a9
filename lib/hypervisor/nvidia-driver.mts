// The NVIDIA driver on the host (setup steps 7 and 8): the kernel driver
// the containers share the GPU through, and the boot-time unit that
// initialises the GPUs before the guests start.
//
// What the bash got wrong, and how this differs:
// - It rebooted the host in the middle of `phoenix setup`. Phoenix never
//   reboots: it marks the reboot as pending (a file in /run, gone after the
//   reboot) and stops the run with REBOOT_REQUIRED_EXIT; a run before the
//   reboot stops again without reinstalling, a run after it finds the
//   driver loaded at the right version and goes on.
// - It built the module with --no-dkms, so the next kernel update left the
//   host without a driver; here DKMS rebuilds it for every kernel.
// - It purged `*nvidia*` and reinstalled headers and tools every time the
//   version did not match; here packages are purged only when some are
//   installed, and tools installed only when missing. The headers package
//   is proxmox-headers-<release> (PVE 8), with pve-headers-<release> as the
//   fallback for older nodes.
// - The runfile is downloaded to a temporary name and renamed (download.mts),
//   so an interrupted download is never taken for a cached installer.
// - The init unit was written only when missing; here it is rewritten when
//   its content differs, and systemd told only then.

import fs from 'node:fs';
import path from 'node:path';
import { query, run } from '../core/runner.mts';
import { writeFileAtomic } from '../core/fs.mts';
import { CommandError } from '../core/errors.mts';
import { info } from '../core/log.mts';
import type { PhoenixOptions } from '../core/env.mts';
import { aptInstall, hostFile, packageInstalled, systemctl, unitEnabled } from './host.mts';
import { fileChange, markRebootRequired, pendingReboot, type SetupContext, type StepResult } from './setup-step.mts';
import { kernelRelease, NOUVEAU_BLACKLIST, nvidiaGpus, pciDevices, updateInitramfs, writeNouveauBlacklist } from './kernel-files.mts';
import { assertGpuConfig } from './vfio.mts';
import { downloadOnce } from './download.mts';

/** Where downloaded runfiles are kept (under the host root), so a re-run does not fetch them again. */
export const RUNFILE_CACHE = '/var/cache/phoenix/nvidia';
export const INIT_UNIT = 'nvidia-gpu-init.service';
export const INIT_UNIT_FILE = `/etc/systemd/system/${INIT_UNIT}`;
export const NVIDIA_SMI = '/usr/bin/nvidia-smi';
/** What the runfile is given: unattended, DKMS-built, no X. */
export const RUNFILE_ARGS = ['--silent', '--accept-license', '--dkms', '--no-x-check', '--no-nouveau-check', '--no-opengl-files'];
const BUILD_PACKAGES = ['build-essential', 'dkms', 'pkg-config'];
const NVIDIA_MODULES = ['nvidia_uvm', 'nvidia_drm', 'nvidia_modeset', 'nvidia'];

export function driverRebootReason(version: string): string {
  return `NVIDIA driver ${version} is installed and loads at the next boot`;
}

/** The driver version nvidia-smi reports, or undefined when it cannot talk to a driver (none, or not loaded yet). */
export async function loadedDriverVersion(): Promise<string | undefined> {
  let result;
  try {
    result = await query({ cmd: 'nvidia-smi', args: ['--query-gpu=driver_version', '--format=csv,noheader'], allowFailure: true, quiet: true });
  } catch {
    return undefined; // not installed at all
  }
  if (result.code !== 0) return undefined;
  return result.stdout.split('\n').map((l) => l.trim()).find((l) => l !== '');
}

async function installedPackages(pattern: string): Promise<string[]> {
  const result = await query({ cmd: 'dpkg-query', args: ['-W', '-f', '${db:Status-Abbrev} ${binary:Package}\\n', pattern], allowFailure: true, quiet: true });
  if (result.code !== 0) return [];
  return result.stdout.split('\n').filter((l) => /^[ih]i/.test(l)).map((l) => l.trim().split(/\s+/).pop()!);
}

/** Headers for the running kernel: the PVE 8 name first, then the older one. */
async function ensureBuildTools(release: string, changes: string[]): Promise<void> {
  const headerNames = [`proxmox-headers-${release}`, `pve-headers-${release}`];
  const headersPresent = (await Promise.all(headerNames.map(packageInstalled))).some(Boolean);
  const missingTools: string[] = [];
  for (const name of BUILD_PACKAGES) if (!(await packageInstalled(name))) missingTools.push(name);
  if (headersPresent && missingTools.length === 0) return;
  const first = headersPresent ? missingTools : [headerNames[0]!, ...missingTools];
  try {
    await aptInstall(first);
    changes.push(`installed ${first.join(' ')}`);
  } catch (err) {
    const unknownHeaders = !headersPresent && err instanceof CommandError && new RegExp(`Unable to locate package ${headerNames[0]}`).test(err.stderr + err.stdout);
    if (!unknownHeaders) throw err;
    const second = [headerNames[1]!, ...missingTools];
    await aptInstall(second);
    changes.push(`installed ${second.join(' ')}`);
  }
}

/** The runfile in the cache, downloaded first when it is not there (to a temporary name, renamed when whole). */
async function cachedRunfile(options: PhoenixOptions, url: string, changes: string[]): Promise<string> {
  const name = path.posix.basename(url.split('?')[0]!);
  const target = path.join(hostFile(options, RUNFILE_CACHE), name);
  const outcome = await downloadOnce({
    url,
    target,
    mode: 0o755,
    timeoutMs: 30 * 60_000,
    check: (file) => (fs.statSync(file).size === 0 ? 'the file is empty' : undefined),
  });
  if (outcome === 'downloaded') changes.push(`downloaded ${name} to ${RUNFILE_CACHE}`);
  return target;
}

/** Setup step 7 (hypervisor_feature_install_nvidia.sh). */
export async function installNvidiaDriver(context: SetupContext): Promise<StepResult> {
  const { config, options } = context;
  const driver = config.hypervisor.nvidia_driver;
  if (driver?.install !== true) return { changes: [], skipped: 'nvidia_driver.install is not true' };
  assertGpuConfig(context);
  const version = driver.version!.trim();
  const url = driver.runfile_url!.trim();

  const gpus = nvidiaGpus(await pciDevices());
  if (gpus.length === 0) return { changes: [], skipped: 'no NVIDIA GPU present (lspci -Dnn)' };

  const reason = driverRebootReason(version);
  if (pendingReboot(options).includes(reason)) {
    return { changes: [], reboot: { reason, stop: true } };
  }

  const changes: string[] = [];
  const loaded = await loadedDriverVersion();
  if (loaded === version) {
    if (!(await packageInstalled('nvtop'))) {
      await aptInstall(['nvtop']);
      changes.push('installed nvtop');
    }
    return { changes };
  }
  info(loaded === undefined ? `no working NVIDIA driver; installing ${version}` : `NVIDIA driver ${loaded} is loaded; replacing it with ${version}`);

  if (loaded !== undefined) {
    // The installer refuses to run while its module is loaded.
    await run({ cmd: 'rmmod', args: NVIDIA_MODULES, allowFailure: true });
  }
  const packaged = await installedPackages('*nvidia*');
  if (packaged.length > 0) {
    // Debian's packaged driver and the runfile's would fight over the same files.
    await run({ cmd: 'apt-get', args: ['purge', '-y', '-q', ...packaged], env: { ...(process.env as Record<string, string>), DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 15 * 60_000 });
    changes.push(`purged ${packaged.join(' ')}`);
  }
  await ensureBuildTools(kernelRelease(options), changes);

  const blacklist = writeNouveauBlacklist(options);
  fileChange(changes, blacklist, NOUVEAU_BLACKLIST, 'blacklist nouveau');
  if (blacklist !== 'unchanged') {
    await updateInitramfs();
    changes.push('rebuilt the initramfs (update-initramfs -u -k all)');
  }

  const runfile = await cachedRunfile(options, url, changes);
  await run({ cmd: runfile, args: RUNFILE_ARGS, timeoutMs: 30 * 60_000 });
  changes.push(`installed NVIDIA driver ${version} (${path.basename(runfile)} ${RUNFILE_ARGS.join(' ')})`);
  await run({ cmd: 'depmod', args: ['-a'] });
  if (!(await packageInstalled('nvtop'))) {
    await aptInstall(['nvtop']);
    changes.push('installed nvtop');
  }
  markRebootRequired(options, reason);
  return { changes, reboot: { reason, stop: true } };
}

// ---------------------------------------------------------------- step 8: the boot-time init unit

export function initUnitText(): string {
  return [
    '# Written by Phoenix (hypervisor_feature_initialize_nvidia_gpus); edits are overwritten.',
    '[Unit]',
    'Description=NVIDIA GPU Initialization',
    'Wants=syslog.target',
    'After=syslog.target',
    // The GPUs exist (device nodes, persistence) before any container that uses them starts.
    'Before=pve-guests.service',
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=${NVIDIA_SMI}`,
    'RemainAfterExit=true',
    'StandardOutput=journal',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** Setup step 8 (hypervisor_feature_initialize_nvidia_gpus.sh). */
export async function initializeNvidiaGpus(context: SetupContext): Promise<StepResult> {
  const { options } = context;
  if (nvidiaGpus(await pciDevices()).length === 0) return { changes: [], skipped: 'no NVIDIA GPU present (lspci -Dnn)' };
  if (!fs.existsSync(hostFile(options, NVIDIA_SMI))) return { changes: [], skipped: `the NVIDIA driver is not installed (${NVIDIA_SMI} is missing)` };
  const changes: string[] = [];
  const outcome = writeFileAtomic(hostFile(options, INIT_UNIT_FILE), initUnitText(), { mode: 0o644 });
  fileChange(changes, outcome, INIT_UNIT_FILE);
  if (outcome !== 'unchanged') await systemctl('daemon-reload');
  if (outcome !== 'unchanged' || !(await unitEnabled(INIT_UNIT))) {
    await systemctl('enable', INIT_UNIT);
    if (outcome === 'unchanged') changes.push(`enabled ${INIT_UNIT}`);
  }
  return { changes };
}
