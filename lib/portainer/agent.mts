// The Portainer agent on a VM with portainer_role "agent": a standalone
// container the Portainer server reaches on the agent port. The bash removed
// and re-ran it on every sync; here it is left alone while it runs the
// image the hypervisor config names, and replaced only when it is missing,
// stopped or on another image.

import { docker, dockerQuery, type GuestTiming } from '../swarm/docker.mts';
import { info } from '../core/log.mts';

export const AGENT_CONTAINER = 'portainer_agent';
/** The agent listens on 9001 inside its container. */
export const AGENT_CONTAINER_PORT = 9001;
/** The ports Portainer's agent and server listen on when the hypervisor config names none (the bash's literals). */
export const DEFAULT_AGENT_PORT = 9001;
export const DEFAULT_PORTAINER_PORT = 9443;
export const DEFAULT_AGENT_IMAGE = 'portainer/agent:latest';

export async function ensureAgent(vmid: string, image: string, hostPort: number, timing: GuestTiming): Promise<'created' | 'changed' | 'unchanged'> {
  const current = await dockerQuery(vmid, ['inspect', '--format', '{{.State.Running}} {{.Config.Image}}', AGENT_CONTAINER], timing, { allowFailure: true });
  const [running, currentImage] = current.exitcode === 0 ? current.stdout.trim().split(/\s+/) : [];
  if (running === 'true' && currentImage === image) return 'unchanged';
  if (current.exitcode === 0) await docker(vmid, ['rm', '--force', AGENT_CONTAINER], timing);
  await docker(vmid, [
    'run', '--detach', '--name', AGENT_CONTAINER, '--restart', 'always',
    '--publish', `${hostPort}:${AGENT_CONTAINER_PORT}`,
    '--volume', '/var/run/docker.sock:/var/run/docker.sock',
    '--volume', '/var/lib/docker/volumes:/var/lib/docker/volumes',
    image,
  ], timing);
  info(`Portainer agent ${image} ${current.exitcode === 0 ? 'replaced' : 'started'} on VM ${vmid} (port ${hostPort})`);
  return current.exitcode === 0 ? 'changed' : 'created';
}
