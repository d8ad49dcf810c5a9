// docker: Docker Engine from Docker's apt repository, on fuse-overlayfs (what
// works in an unprivileged container), with NVIDIA's runtime as the default
// when the container (or the template it was cloned from) has the nvidia
// feature. Installed means dpkg lists the packages, daemon.json holds these
// settings and the service is enabled and running. The bash probed with
// `pct exec … command -v docker`, which cannot succeed (`command` is a shell
// builtin), and overwrote daemon.json whole; settings of the operator's own
// are now kept.

import { isDeepStrictEqual } from 'node:util';
import { PhoenixError } from '../../core/errors.mts';
import { warn } from '../../core/log.mts';
import { applyPlan, once, type FeaturePlan, type HostStep } from '../../guest/feature-plan.mts';
import { packageProbe, serviceProbe } from '../../guest/feature-container.mts';
import { hasFeature, missingCommands, probe, pushContent, readGuestFile, requireRunning, runGuestCommand, runGuestScript, type FeatureContext, type FeatureResult } from '../../guest/container.mts';
import { cudaRepoStep } from './nvidia.mts';

export const FEATURE = 'docker';

export const DOCKER_PACKAGES = ['docker-ce', 'docker-ce-cli', 'containerd.io', 'docker-compose-plugin'] as const;
export const STORAGE_PACKAGE = 'fuse-overlayfs';
export const NVIDIA_TOOLKIT = 'nvidia-container-toolkit';
export const DAEMON_JSON = '/etc/docker/daemon.json';
/** Where nvidia-container-toolkit installs its runtime (upstream literal). */
export const NVIDIA_RUNTIME_PATH = '/usr/bin/nvidia-container-runtime';

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** daemon.json with Phoenix's settings merged into whatever the file already holds. */
export function desiredDaemonConfig(current: unknown, nvidia: boolean): Json {
  const config: Json = isRecord(current) ? { ...current } : {};
  config['storage-driver'] = 'fuse-overlayfs';
  if (nvidia) {
    config['default-runtime'] = 'nvidia';
    const runtimes = isRecord(config.runtimes) ? { ...config.runtimes } : {};
    runtimes.nvidia = { path: NVIDIA_RUNTIME_PATH, runtimeArgs: [] };
    config.runtimes = runtimes;
  }
  return config;
}

export async function plan(ctid: string, context: FeatureContext): Promise<FeaturePlan> {
  await requireRunning(ctid);
  const nvidia = hasFeature(context, ctid, 'nvidia');
  const wanted: string[] = [...DOCKER_PACKAGES, STORAGE_PACKAGE, ...(nvidia ? [NVIDIA_TOOLKIT] : [])];
  const packages = packageProbe(ctid, wanted);
  const has = async (name: string) => (await packages.installed()).has(name);
  const daemon = once(async () => {
    const text = await readGuestFile(ctid, DAEMON_JSON);
    let current: unknown;
    try {
      current = text === undefined ? undefined : JSON.parse(text);
    } catch {
      warn(`${FEATURE}: ${DAEMON_JSON} in CT ${ctid} is not valid JSON; it will be rewritten`);
    }
    const desired = desiredDaemonConfig(current, nvidia);
    return { text, desired, ok: current !== undefined && isDeepStrictEqual(current, desired) };
  });
  const service = serviceProbe(ctid, 'docker');
  const aptStep = (id: string, name: string): HostStep => ({
    kind: 'host',
    id,
    title: `install ${name}`,
    check: () => has(name),
    apply: async () => {
      await runGuestScript(ctid, 'apt_install.sh', [name], { feature: FEATURE, label: `installing ${name}` });
      return [`installed ${name}`];
    },
  });
  const gpuSteps: HostStep[] = nvidia ? [cudaRepoStep(ctid, context, FEATURE, async () => !(await has(NVIDIA_TOOLKIT))), aptStep('nvidia-toolkit', NVIDIA_TOOLKIT)] : [];
  return {
    feature: FEATURE,
    kind: 'lxc',
    guest: ctid,
    steps: [
      {
        kind: 'require',
        id: 'nvidia-smi',
        title: 'the NVIDIA user space is installed (for the container toolkit)',
        check: async () => !nvidia || (await has(NVIDIA_TOOLKIT)) || (await missingCommands(ctid, ['nvidia-smi'])).length === 0,
        message: `CT ${ctid} has the nvidia feature but no nvidia-smi`,
        hint: 'list nvidia before docker in the CT features',
      },
      {
        kind: 'host',
        id: 'docker-packages',
        title: `install ${DOCKER_PACKAGES.join(' ')} from Docker's repository`,
        check: async () => (await packages.missing()).every((p) => !(DOCKER_PACKAGES as readonly string[]).includes(p)),
        apply: async () => {
          const missing = (await packages.missing()).filter((p) => (DOCKER_PACKAGES as readonly string[]).includes(p));
          await runGuestScript(ctid, 'docker.sh', missing, { feature: FEATURE, label: `installing ${missing.join(' ')} from Docker's repository` });
          return [`installed ${missing.join(' ')}`];
        },
      },
      aptStep('storage-driver', STORAGE_PACKAGE),
      ...gpuSteps,
      {
        kind: 'host',
        id: 'daemon-json',
        title: `write ${DAEMON_JSON}`,
        check: async () => (await daemon()).ok,
        apply: async () => {
          const { text, desired } = await daemon();
          await pushContent(ctid, DAEMON_JSON, `${JSON.stringify(desired, null, 2)}\n`, { feature: FEATURE, label: `writing ${DAEMON_JSON}`, perms: '0644', mkdir: true });
          return [`${text === undefined ? 'wrote' : 'updated'} ${DAEMON_JSON}`];
        },
      },
      {
        kind: 'host',
        id: 'docker-enabled',
        title: 'enable docker',
        check: async () => (await service()).enabled,
        apply: async () => {
          await runGuestCommand(ctid, ['systemctl', 'enable', 'docker'], { feature: FEATURE, label: 'enabling docker' });
          return ['enabled docker'];
        },
      },
      {
        kind: 'host',
        id: 'docker-running',
        title: 'restart docker (new packages or settings)',
        check: async () => (await service()).active,
        after: ['docker-packages', 'storage-driver', 'nvidia-toolkit', 'daemon-json'].filter((id) => nvidia || id !== 'nvidia-toolkit'),
        apply: async () => {
          const active = (await service()).active;
          await runGuestCommand(ctid, ['systemctl', 'restart', 'docker'], { feature: FEATURE, label: 'restarting docker' });
          return [active ? 'restarted docker' : 'started docker'];
        },
      },
    ],
    verify: async () => {
      const version = await probe(ctid, ['docker', '--version']);
      if (version.code !== 0) throw new PhoenixError(`${FEATURE}: 'docker --version' fails in CT ${ctid} after the install (exit ${version.code})`);
    },
  };
}

export async function install(ctid: string, context: FeatureContext): Promise<FeatureResult> {
  return applyPlan(await plan(ctid, context), context);
}
