// nvidia: the NVIDIA driver's user-space part and the CUDA toolkit in a
// container whose GPUs the host passes through (lxc-manager writes the
// device entries). Installed means nvidia-smi reports the driver version the
// manifest names (the host's kernel module must match it) and dpkg lists the
// CUDA toolkit package. The bash only looked for an nvidia-smi binary.

import fs from 'node:fs';
import path from 'node:path';
import { run, sleep } from '../../core/runner.mts';
import { isDryRun } from '../../core/context.mts';
import { ensureDir, uniqueSuffix } from '../../core/fs.mts';
import { ConfigError, PhoenixError } from '../../core/errors.mts';
import { info } from '../../core/log.mts';
import * as pct from '../../pve/pct.mts';
import { applyPlan, once, type FeaturePlan, type HostStep } from '../../guest/feature-plan.mts';
import { packageProbe } from '../../guest/feature-container.mts';
import { guestConfig, probe, pushHostFile, readGuestFile, requireRunning, runGuestScript, type FeatureContext, type FeatureResult } from '../../guest/container.mts';

export const FEATURE = 'nvidia';

/** NVIDIA's CUDA repository signing key, by file name under the repository URL (upstream literal). */
export const CUDA_REPO_KEY = '3bf863cc.pub';
export const CUDA_KEYRING = '/usr/share/keyrings/cuda-archive-keyring.gpg';
export const CUDA_LIST = '/etc/apt/sources.list.d/cuda.list';
/** CUDA release when the hypervisor config has no `nvidia_driver.cuda_version` (the bash installed cuda-toolkit-12-8). */
export const DEFAULT_CUDA_VERSION = '12.8';
/** What the NVIDIA installer needs inside the container (upstream list). */
export const PREREQUISITES = ['wget', 'build-essential', 'pkg-config', 'libglvnd-dev', 'curl', 'gnupg'] as const;

/** How long to wait for the passed-through device nodes, and how often to look (upstream: 30 s, every 2 s). Tests shorten it. */
export const deviceWait = { timeoutMs: 30_000, pollMs: 2_000 };

const RUNFILE_TIMEOUT_MS = 30 * 60_000;
const TOOLKIT_TIMEOUT_MS = 90 * 60_000;
const DOWNLOAD_TIMEOUT_MS = 30 * 60_000;

export interface NvidiaSettings {
  runfileUrl: string | undefined;
  /** The user-space version to install; the manifest's, else the one in the runfile name. */
  driverVersion: string | undefined;
  repoUrl: string | undefined;
  cudaVersion: string;
}

/** The root `nvidia_*` keys of the LXC manifest (the bash reached them through jq_get_value's root fallback). */
export function nvidiaSettings(context: FeatureContext): NvidiaSettings {
  const lxc = context.config.lxc;
  const runfileUrl = lxc.nvidia_runfile_url;
  const fromName = runfileUrl === undefined ? undefined : /-(\d+(?:\.\d+)+)\.run$/.exec(runfileUrl)?.[1];
  return {
    runfileUrl,
    driverVersion: lxc.nvidia_driver_version ?? fromName,
    repoUrl: lxc.nvidia_repo_url,
    cudaVersion: context.config.hypervisor.nvidia_driver?.cuda_version ?? DEFAULT_CUDA_VERSION,
  };
}

/** `cuda-toolkit-12-8` for CUDA 12.8. */
export function toolkitPackage(cudaVersion: string): string {
  const [major, minor = '0'] = cudaVersion.split('.');
  return `cuda-toolkit-${major}-${minor}`;
}

/**
 * The device nodes of the CT's GPUs (`gpu_assignment` "1" → /dev/nvidia1).
 * The bash always waited for /dev/nvidia0, so a CT given only GPU 1 never got
 * the driver.
 */
export function gpuDevices(context: FeatureContext, ctid: string): string[] {
  const assignment = guestConfig(context, ctid)?.gpu_assignment;
  if (assignment === undefined) return ['/dev/nvidia0'];
  if (assignment.trim() === 'none') {
    throw new ConfigError(context.config.paths.lxc, `/lxc_configs/${ctid}/gpu_assignment`, `CT ${ctid} lists the nvidia feature but is given no GPU ("none")`);
  }
  return assignment.split(',').map((n) => `/dev/nvidia${n.trim()}`);
}

export async function waitForDevices(ctid: string, devices: readonly string[]): Promise<void> {
  const deadline = Date.now() + deviceWait.timeoutMs;
  let missing = [...devices];
  for (;;) {
    const still: string[] = [];
    for (const device of missing) if (!(await pct.test(ctid, '-e', device))) still.push(device);
    missing = still;
    if (missing.length === 0) return;
    if (Date.now() >= deadline) break;
    await sleep(deviceWait.pollMs);
  }
  throw new PhoenixError(`${FEATURE}: ${missing.join(', ')} did not appear in CT ${ctid} within ${Math.round(deviceWait.timeoutMs / 1000)} s`, {
    hint: `lxc-manager passes the GPUs named by gpu_assignment through; check the host driver (nvidia-smi on the host) and /etc/pve/lxc/${ctid}.conf`,
  });
}

/** The driver version nvidia-smi reports inside the container, if it runs at all. */
export async function driverVersion(ctid: string): Promise<string | undefined> {
  const result = await probe(ctid, ['nvidia-smi', '--query-gpu=driver_version', '--format=csv,noheader']);
  if (result.code !== 0) return undefined;
  return result.stdout.split('\n').map((l) => l.trim()).find(Boolean);
}

function repoLine(repoUrl: string): string {
  return `deb [signed-by=${CUDA_KEYRING}] ${repoUrl} /`;
}

/** The bash's idempotency test for the CUDA repository: the exact list line and the keyring. */
export async function cudaRepoConfigured(ctid: string, repoUrl: string): Promise<boolean> {
  const list = await readGuestFile(ctid, CUDA_LIST);
  if (list === undefined || !list.split('\n').includes(repoLine(repoUrl))) return false;
  return pct.test(ctid, '-f', CUDA_KEYRING);
}

/**
 * NVIDIA's CUDA apt repository, configured when `wanted` says a package
 * from it is about to be installed and it is not configured yet (shared
 * with the docker feature).
 */
export function cudaRepoStep(ctid: string, context: FeatureContext, feature: string, wanted: () => Promise<boolean>): HostStep {
  const repoUrl = context.config.lxc.nvidia_repo_url;
  return {
    kind: 'host',
    id: 'cuda-repo',
    title: 'configure the CUDA apt repository',
    check: async () => !(await wanted()) || (repoUrl !== undefined && (await cudaRepoConfigured(ctid, repoUrl))),
    apply: async () => {
      if (repoUrl === undefined) {
        throw new ConfigError(context.config.paths.lxc, '/nvidia_repo_url', 'missing; the CUDA apt repository URL is needed to install from it');
      }
      const ubuntu = /ubuntu(\d{4})/.exec(repoUrl)?.[1];
      if (ubuntu === undefined) {
        throw new ConfigError(context.config.paths.lxc, '/nvidia_repo_url', `expected an NVIDIA repository URL naming the Ubuntu release (…/ubuntuNNNN/…), got ${repoUrl}`);
      }
      const url = repoUrl.endsWith('/') ? repoUrl : `${repoUrl}/`;
      await runGuestScript(ctid, 'cuda_repo.sh', [url, ubuntu, CUDA_REPO_KEY], { feature, label: 'configuring the CUDA apt repository' });
      return [`configured the CUDA repository ${url}`];
    },
  };
}

/**
 * The runfile, downloaded once into <base>/cache (the bash fetched several
 * hundred MB again for every container). No checksum is published in the
 * manifests, so none is checked.
 */
async function cachedRunfile(context: FeatureContext, url: string): Promise<string> {
  const name = path.posix.basename(new URL(url).pathname);
  if (!/^[\w.+-]+\.run$/.test(name)) throw new ConfigError(context.config.paths.lxc, '/nvidia_runfile_url', `expected a URL of an NVIDIA .run file, got ${url}`);
  const dir = path.join(context.options.baseDir, 'cache');
  const file = path.join(dir, name);
  if (fs.existsSync(file)) {
    info(`${FEATURE}: using the cached ${file}`);
    return file;
  }
  ensureDir(dir, 0o755);
  const partial = `${file}.${uniqueSuffix()}.part`;
  try {
    await run({ cmd: 'wget', args: ['-q', '-O', partial, url], timeoutMs: DOWNLOAD_TIMEOUT_MS });
    if (!isDryRun()) fs.renameSync(partial, file);
  } finally {
    fs.rmSync(partial, { force: true });
  }
  return file;
}

export async function plan(ctid: string, context: FeatureContext): Promise<FeaturePlan> {
  await requireRunning(ctid);
  await waitForDevices(ctid, gpuDevices(context, ctid));
  const settings = nvidiaSettings(context);
  const toolkit = toolkitPackage(settings.cudaVersion);
  const installed = once(() => driverVersion(ctid));
  const driverOk = async () => {
    const version = await installed();
    return version !== undefined && (settings.driverVersion === undefined || version === settings.driverVersion);
  };
  const prerequisites = packageProbe(ctid, PREREQUISITES);
  const toolkitProbe = packageProbe(ctid, [toolkit]);
  const toolkitMissing = async () => (await toolkitProbe.missing()).length > 0;
  const runfileUrl = (): string => {
    if (settings.runfileUrl === undefined) throw new ConfigError(context.config.paths.lxc, '/nvidia_runfile_url', 'missing; the NVIDIA driver runfile URL is needed to install the driver');
    return settings.runfileUrl;
  };
  return {
    feature: FEATURE,
    kind: 'lxc',
    guest: ctid,
    steps: [
      {
        kind: 'host',
        id: 'driver-prerequisites',
        title: `install what the NVIDIA installer needs (${PREREQUISITES.join(' ')})`,
        check: async () => (await driverOk()) || (await prerequisites.missing()).length === 0,
        apply: async () => {
          runfileUrl();
          const missing = await prerequisites.missing();
          await runGuestScript(ctid, 'apt_install.sh', missing, { feature: FEATURE, label: `installing ${missing.join(' ')}` });
          return [`installed ${missing.join(' ')}`];
        },
      },
      {
        kind: 'host',
        id: 'driver',
        title: `install the NVIDIA user space ${settings.driverVersion ?? ''}`.trim(),
        check: driverOk,
        apply: async () => {
          const hostFile = await cachedRunfile(context, runfileUrl());
          const guestFile = `/tmp/${path.basename(hostFile)}`;
          await pushHostFile(ctid, hostFile, guestFile, { feature: FEATURE, label: 'copying the driver runfile', perms: '0700' });
          await runGuestScript(ctid, 'nvidia_runfile.sh', [guestFile], { feature: FEATURE, label: 'running the NVIDIA installer', timeoutMs: RUNFILE_TIMEOUT_MS });
          const before = await installed();
          return [before === undefined ? `installed the NVIDIA user space ${settings.driverVersion ?? ''}`.trim() : `replaced NVIDIA user space ${before} with ${settings.driverVersion}`];
        },
      },
      cudaRepoStep(ctid, context, FEATURE, toolkitMissing),
      {
        kind: 'host',
        id: 'cuda-toolkit',
        title: `install ${toolkit}`,
        check: async () => !(await toolkitMissing()),
        apply: async () => {
          await runGuestScript(ctid, 'apt_install.sh', [toolkit], { feature: FEATURE, label: `installing ${toolkit}`, timeoutMs: TOOLKIT_TIMEOUT_MS });
          return [`installed ${toolkit}`];
        },
      },
    ],
    verify: () => verify(ctid, settings),
  };
}

export async function install(ctid: string, context: FeatureContext): Promise<FeatureResult> {
  return applyPlan(await plan(ctid, context), context);
}

async function verify(ctid: string, settings: NvidiaSettings): Promise<void> {
  const version = await driverVersion(ctid);
  if (version === undefined) throw new PhoenixError(`${FEATURE}: nvidia-smi does not run in CT ${ctid} after the install`);
  if (settings.driverVersion !== undefined && version !== settings.driverVersion) {
    throw new PhoenixError(`${FEATURE}: CT ${ctid} reports driver ${version} after installing ${settings.driverVersion}`);
  }
  const nvcc = await probe(ctid, ['/usr/local/cuda/bin/nvcc', '--version']);
  if (nvcc.code !== 0) throw new PhoenixError(`${FEATURE}: /usr/local/cuda/bin/nvcc does not run in CT ${ctid} after the install (exit ${nvcc.code})`);
}
