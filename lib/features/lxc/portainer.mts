// portainer: a Portainer server or agent container, by the CT's
// `portainer_role` (server, agent; anything else: nothing to do). Installed
// means the container of that name is running. The bash called an undefined
// verification function and read the agent's server address from keys no
// container has; both are fixed here. A stopped container of the same
// name is started again, not removed, so its data volume stays in use.

import { ConfigError, PhoenixError } from '../../core/errors.mts';
import { warn } from '../../core/log.mts';
import { applyPlan, once, type FeaturePlan } from '../../guest/feature-plan.mts';
import { guestConfig, missingCommands, probe, requireRunning, runGuestCommand, skipped, type FeatureContext, type FeatureResult } from '../../guest/container.mts';

export const FEATURE = 'portainer';

/** Images when the hypervisor config's `docker` section names none (upstream literals; pin them there). */
export const DEFAULT_SERVER_IMAGE = 'portainer/portainer-ce:latest';
export const DEFAULT_AGENT_IMAGE = 'portainer/agent';
export const SERVER_CONTAINER = 'portainer';
export const AGENT_CONTAINER = 'portainer_agent';
/** Portainer's HTTPS UI and its agent/edge port (upstream literals). */
export const SERVER_HTTPS_PORT = 9443;
export const DEFAULT_AGENT_PORT = 9001;

/** The `docker run` argument vector for this CT's role (a pure function of the manifests). */
export function dockerRunArgs(context: FeatureContext, role: 'server' | 'agent'): string[] {
  const hv = context.config.hypervisor;
  const agentPort = hv.network?.portainer_agent_port ?? DEFAULT_AGENT_PORT;
  if (role === 'server') {
    const hostname = hv.portainer_api?.portainer_hostname ?? `portainer.${hv.domain_name}`;
    return [
      'docker', 'run', '-d',
      '-p', `${SERVER_HTTPS_PORT}:${SERVER_HTTPS_PORT}`,
      '-p', `${agentPort}:${agentPort}`,
      '--name', SERVER_CONTAINER, '--restart=always',
      '-v', '/var/run/docker.sock:/var/run/docker.sock',
      '-v', 'portainer_data:/data',
      '-v', '/certs:/certs:ro',
      hv.docker?.portainer_server_image ?? DEFAULT_SERVER_IMAGE,
      '--ssl', '--sslcert', `/certs/${hostname}.crt`, '--sslkey', `/certs/${hostname}.key`,
    ];
  }
  const serverIp = hv.network?.portainer_server_ip;
  if (serverIp === undefined) {
    throw new ConfigError(context.config.paths.hypervisor, '/network/portainer_server_ip', 'missing; a Portainer agent needs the server address');
  }
  return [
    'docker', 'run', '-d',
    '-p', `${agentPort}:${agentPort}`,
    '--name', AGENT_CONTAINER, '--restart=always',
    '-v', '/var/run/docker.sock:/var/run/docker.sock',
    '-v', '/var/lib/docker/volumes:/var/lib/docker/volumes',
    '-e', `AGENT_CLUSTER_ADDR=tcp://${serverIp}:${agentPort}`,
    hv.docker?.portainer_agent_image ?? DEFAULT_AGENT_IMAGE,
  ];
}

async function containerNames(ctid: string, all: boolean): Promise<string[]> {
  const result = await probe(ctid, ['docker', 'ps', ...(all ? ['-a'] : []), '--format', '{{.Names}}']);
  return result.code === 0 ? result.stdout.split('\n').map((n) => n.trim()).filter(Boolean) : [];
}

/** The plan for this CT's role, or the reason there is nothing to do. */
export async function plan(ctid: string, context: FeatureContext): Promise<FeaturePlan | string> {
  const role = guestConfig(context, ctid)?.portainer_role ?? 'none';
  if (role === 'none') return 'portainer_role is none';
  if (role !== 'server' && role !== 'agent') {
    warn(`${FEATURE}: CT ${ctid} has portainer_role '${role}'; only server and agent run a Portainer container`);
    return `portainer_role '${role}' runs no Portainer container`;
  }
  await requireRunning(ctid);
  const name = role === 'server' ? SERVER_CONTAINER : AGENT_CONTAINER;
  const running = once(() => containerNames(ctid, false));
  return {
    feature: FEATURE,
    kind: 'lxc',
    guest: ctid,
    steps: [
      {
        kind: 'require',
        id: 'docker',
        title: 'docker is installed',
        check: async () => (await missingCommands(ctid, ['docker'])).length === 0,
        message: `docker is not installed in CT ${ctid}`,
        hint: 'list docker before portainer in the CT features',
      },
      {
        kind: 'host',
        id: 'container',
        title: `run the ${name} container`,
        check: async () => (await running()).includes(name),
        apply: async () => {
          // A stopped container of that name is started again, not replaced: its data volume stays in use.
          if ((await containerNames(ctid, true)).includes(name)) {
            await runGuestCommand(ctid, ['docker', 'start', name], { feature: FEATURE, label: `starting the existing ${name} container` });
            return [`started the existing ${name} container`];
          }
          await runGuestCommand(ctid, dockerRunArgs(context, role), { feature: FEATURE, label: `creating the ${name} container` });
          return [`created the ${name} container`];
        },
      },
    ],
    verify: async () => {
      const inspect = await probe(ctid, ['docker', 'inspect', '-f', '{{.State.Running}}', name]);
      if (inspect.stdout.trim() !== 'true') throw new PhoenixError(`${FEATURE}: the ${name} container is not running in CT ${ctid} after the start`);
    },
  };
}

export async function install(ctid: string, context: FeatureContext): Promise<FeatureResult> {
  const p = await plan(ctid, context);
  return typeof p === 'string' ? skipped(FEATURE, ctid, p) : applyPlan(p, context);
}
