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
import { isDryRun } from '../../core/context.mts';
import {
  changeLog,
  hasFeature,
  installedPackages,
  missingCommands,
  probe,
  pushContent,
  readGuestFile,
  requireRunning,
  runGuestCommand,
  runGuestScript,
  serviceState,
  type FeatureContext,
  type FeatureResult,
} from '../../guest/container.mts';
import { ensureCudaRepo } from './nvidia.mts';

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

export async function install(ctid: string, context: FeatureContext): Promise<FeatureResult> {
  const changes = changeLog(FEATURE, ctid);
  await requireRunning(ctid);
  const nvidia = hasFeature(context, ctid, 'nvidia');
  const wanted: string[] = [...DOCKER_PACKAGES, STORAGE_PACKAGE, ...(nvidia ? [NVIDIA_TOOLKIT] : [])];
  const installed = await installedPackages(ctid, wanted);
  const text = await readGuestFile(ctid, DAEMON_JSON);
  let current: unknown;
  try {
    current = text === undefined ? undefined : JSON.parse(text);
  } catch {
    warn(`${FEATURE}: ${DAEMON_JSON} in CT ${ctid} is not valid JSON; it will be rewritten`);
  }
  const desired = desiredDaemonConfig(current, nvidia);
  const configOk = current !== undefined && isDeepStrictEqual(current, desired);
  const state = await serviceState(ctid, 'docker');
  if (wanted.every((p) => installed.has(p)) && configOk && state.active && state.enabled) return changes.result();

  let restart = false;
  const dockerMissing = DOCKER_PACKAGES.filter((p) => !installed.has(p));
  if (dockerMissing.length > 0) {
    await runGuestScript(ctid, 'docker.sh', dockerMissing, { feature: FEATURE, label: `installing ${dockerMissing.join(' ')} from Docker's repository` });
    changes.add(`installed ${dockerMissing.join(' ')}`);
    restart = true;
  }
  if (!installed.has(STORAGE_PACKAGE)) {
    await runGuestScript(ctid, 'apt_install.sh', [STORAGE_PACKAGE], { feature: FEATURE, label: `installing ${STORAGE_PACKAGE}` });
    changes.add(`installed ${STORAGE_PACKAGE}`);
    restart = true;
  }
  if (nvidia && !installed.has(NVIDIA_TOOLKIT)) {
    if ((await missingCommands(ctid, ['nvidia-smi'])).length > 0) {
      throw new PhoenixError(`${FEATURE}: CT ${ctid} has the nvidia feature but no nvidia-smi`, { hint: 'list nvidia before docker in the CT features' });
    }
    await ensureCudaRepo(ctid, context, FEATURE, changes);
    await runGuestScript(ctid, 'apt_install.sh', [NVIDIA_TOOLKIT], { feature: FEATURE, label: `installing ${NVIDIA_TOOLKIT}` });
    changes.add(`installed ${NVIDIA_TOOLKIT}`);
    restart = true;
  }
  if (!configOk) {
    await pushContent(ctid, DAEMON_JSON, `${JSON.stringify(desired, null, 2)}\n`, { feature: FEATURE, label: `writing ${DAEMON_JSON}`, perms: '0644', mkdir: true });
    changes.add(`${text === undefined ? 'wrote' : 'updated'} ${DAEMON_JSON}`);
    restart = true;
  }
  if (!state.enabled) {
    await runGuestCommand(ctid, ['systemctl', 'enable', 'docker'], { feature: FEATURE, label: 'enabling docker' });
    changes.add('enabled docker');
  }
  if (restart || !state.active) {
    await runGuestCommand(ctid, ['systemctl', 'restart', 'docker'], { feature: FEATURE, label: 'restarting docker' });
    changes.add(state.active ? 'restarted docker' : 'started docker');
  }
  if (!isDryRun()) {
    const version = await probe(ctid, ['docker', '--version']);
    if (version.code !== 0) throw new PhoenixError(`${FEATURE}: 'docker --version' fails in CT ${ctid} after the install (exit ${version.code})`);
  }
  return changes.result();
}
