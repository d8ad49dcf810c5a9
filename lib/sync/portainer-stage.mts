// Stage 7 of `sync all`: Portainer. Its admin password file and Swarm
// secret, the stack deployed once (or reset by name with --reset-portainer),
// then the admin, the environments and the agent through its HTTP API.

import fs from 'node:fs';
import { info, warn } from '../core/log.mts';
import { isDryRun } from '../core/context.mts';
import { runChild } from './child.mts';
import { PortainerClient } from '../portainer/client.mts';
import { ensureAdmin, ensureEndpoint, login, systemStatus, ENDPOINT_AGENT, ENDPOINT_LOCAL_DOCKER, type Outcome } from '../portainer/api.mts';
import { adminCredentials } from '../portainer/password.mts';
import { ADMIN_SECRET, ensureAdminSecret, removeAdminSecret } from '../portainer/secret.mts';
import { DEFAULT_AGENT_IMAGE, DEFAULT_AGENT_PORT, DEFAULT_PORTAINER_PORT, ensureAgent } from '../portainer/agent.mts';
import { docker, guestTiming } from '../swarm/docker.mts';
import {
  changed,
  unchanged,
  skipped,
  onHost,
  childFailure,
  childChange,
  vms,
  swarmManager,
  portainerPrimary,
  address,
  guestState,
  PORTAINER_STACK,
  SWARM_MANAGER,
  type StageResult,
  type SyncContext,
} from './stage-kit.mts';

// ---------------------------------------------------------------- stage 7: Portainer

export interface PortainerTarget {
  url: string;
  ca?: string;
  /** Why the API part is not done (simulated host without a stand-in). */
  unavailable?: string;
}

/**
 * Portainer's address: PHOENIX_PORTAINER_URL, else https to
 * network.portainer_server_ip:portainer_server_port (or the primary VM's
 * address) verified against the Phoenix root CA (PHOENIX_PORTAINER_CA
 * overrides the CA file).
 */
export function portainerTarget(ctx: SyncContext): PortainerTarget {
  const caFile = ctx.options.portainer.caFile ?? onHost(ctx.options, ctx.config.hypervisor.step_ca?.root_ca_file ?? '/etc/phoenix/ca/root_ca.crt');
  const ca = fs.existsSync(caFile) ? fs.readFileSync(caFile, 'utf8') : undefined;
  const explicit = ctx.options.portainer.url;
  if (explicit) return { url: explicit, ...(ca === undefined ? {} : { ca }) };
  const network = ctx.config.hypervisor.network;
  const primary = portainerPrimary(ctx);
  const ip = network?.portainer_server_ip ?? (primary ? address(primary) : undefined);
  const url = `https://${ip ?? 'portainer'}:${network?.portainer_server_port ?? DEFAULT_PORTAINER_PORT}`;
  if (ctx.options.simulatedHost) return { url, unavailable: 'the simulated host runs no Portainer (set PHOENIX_PORTAINER_URL to a stand-in)' };
  if (ip === undefined) return { url, unavailable: 'no network.portainer_server_ip and the primary VM has no static address' };
  if (ca === undefined) return { url, unavailable: `the root CA ${caFile} to verify Portainer's certificate is missing` };
  return { url, ca };
}

export async function portainer(ctx: SyncContext): Promise<StageResult> {
  const primary = portainerPrimary(ctx);
  if (!primary) return skipped('no VM has portainer_role primary');
  const manager = swarmManager(ctx) ?? primary;
  const notes: string[] = [];
  let changes = 0;

  const vmid = String(manager.vmid);
  const timing = guestTiming(ctx.options);
  const hasStack = ctx.config.stacks.docker_stacks[PORTAINER_STACK] !== undefined;

  if (ctx.resetPortainer) {
    // The real names (the bash removed prod_..., which never existed).
    const stackName = `${ctx.environment}_${PORTAINER_STACK}`;
    info(`--reset-portainer: removing the stack ${stackName}, its volume ${stackName}_portainer_data and the Swarm secret ${ADMIN_SECRET}`);
    const rm = await runChild(ctx, SWARM_MANAGER, ['rm', PORTAINER_STACK, '--env', ctx.environment]);
    const failure = childFailure(rm);
    if (failure && failure.status === 'failed') return failure;
    await removeVolume(ctx, vmid, `${stackName}_portainer_data`);
    await removeAdminSecret(vmid, timing);
    changes++;
    notes.push('reset');
  }

  // The password file first: the stack's secret and the API login both come from it.
  const credentials = adminCredentials(ctx.config, ctx.options);
  if (credentials.created) {
    changes++;
    notes.push(`admin password created in ${credentials.file}`);
  }

  if (hasStack) {
    if ((await ensureAdminSecret(vmid, credentials.password, timing)) === 'created') {
      changes++;
      notes.push(`Swarm secret ${ADMIN_SECRET} created`);
    }
    const deploy = await runChild(ctx, SWARM_MANAGER, ['deploy', PORTAINER_STACK, '--env', ctx.environment]);
    const failure = childFailure(deploy);
    if (failure) return failure.status === 'skipped' ? failure : { ...failure, detail: `deploying the Portainer stack: ${failure.detail}` };
    if (childChange(deploy).changed) {
      changes++;
      notes.push('stack deployed');
    }
  } else {
    notes.push(`no '${PORTAINER_STACK}' in the stacks manifest: Portainer is expected to run already`);
  }

  const agentPort = ctx.config.hypervisor.network?.portainer_agent_port ?? DEFAULT_AGENT_PORT;
  const agentImage = ctx.config.hypervisor.docker?.portainer_agent_image ?? DEFAULT_AGENT_IMAGE;
  for (const agent of vms(ctx).filter((vm) => vm.portainer_role === 'agent')) {
    const id = String(agent.vmid);
    const state = await guestState('vm', id);
    if (state !== 'running') {
      warn(`Portainer agent VM ${id} is ${state === 'absent' ? 'not created' : 'not running'}; its agent is not checked`);
      continue;
    }
    if ((await ensureAgent(id, agentImage, agentPort, timing)) !== 'unchanged') {
      changes++;
      notes.push(`agent on VM ${id} (re)started`);
    }
  }

  const target = portainerTarget(ctx);
  if (target.unavailable) {
    warn(`Portainer's admin and environments are not checked: ${target.unavailable}`);
    notes.push(`API not checked: ${target.unavailable}`);
    return changes > 0 ? changed(notes.join('; ')) : unchanged(notes.join('; '));
  }
  if (isDryRun()) {
    info(`DRY-RUN: would set up the Portainer admin '${credentials.user}' at ${target.url}, then its environments`);
    return changes > 0 ? changed(notes.join('; ')) : unchanged(`would check the admin and environments at ${target.url}`);
  }
  const client = new PortainerClient({
    baseUrl: target.url,
    ...(target.ca === undefined ? {} : { ca: target.ca }),
    ...(ctx.options.portainer.retries === undefined ? {} : { attempts: ctx.options.portainer.retries }),
    ...(ctx.options.portainer.backoffMs === undefined ? {} : { backoffMs: ctx.options.portainer.backoffMs }),
  });
  const status = await systemStatus(client);
  const admin = await ensureAdmin(client, credentials.user, credentials.password as string);
  if (admin !== 'unchanged') {
    changes++;
    notes.push(`admin '${credentials.user}' initialised`);
  }
  const token = await login(client, credentials.user, credentials.password as string, credentials.file);
  const swarmEndpoint = await ensureEndpoint(client, token, { name: primary.portainer_environment_name ?? primary.name, creationType: ENDPOINT_LOCAL_DOCKER, url: 'unix:///var/run/docker.sock' });
  const outcomes: Outcome[] = [swarmEndpoint.outcome];
  for (const agent of vms(ctx).filter((vm) => vm.portainer_role === 'agent')) {
    const host = agent.portainer_agent_hostname ?? address(agent);
    if (!host) {
      warn(`VM ${agent.vmid} is a Portainer agent without portainer_agent_hostname or a static address; no environment registered`);
      continue;
    }
    outcomes.push((await ensureEndpoint(client, token, { name: agent.portainer_environment_name ?? agent.name, creationType: ENDPOINT_AGENT, url: `tcp://${host}:${agentPort}` })).outcome);
  }
  const endpointChanges = outcomes.filter((o) => o !== 'unchanged').length;
  if (endpointChanges > 0) {
    changes++;
    notes.push(`${endpointChanges} environment${endpointChanges === 1 ? '' : 's'} registered or updated`);
  }
  ctx.portainer = { client, token, swarmEndpointId: swarmEndpoint.id };
  const summary = `Portainer ${status.Version ?? ''} at ${client.url}`.replace(/\s+/g, ' ');
  return changes > 0 ? changed(`${summary}: ${notes.join('; ')}`) : unchanged(`${summary}: admin and ${outcomes.length} environment${outcomes.length === 1 ? '' : 's'} in place`);
}


/** Remove a Docker volume on the manager once the stack's tasks have let go of it. */
export async function removeVolume(ctx: SyncContext, vmid: string, volume: string): Promise<void> {
  for (let attempt = 1; attempt <= 10; attempt++) {
    const result = await docker(vmid, ['volume', 'rm', '--force', volume], guestTiming(ctx.options), { allowFailure: true });
    if (result.exitcode === 0 || /no such volume/i.test(result.stderr)) return;
    if (!/in use/i.test(result.stderr) || attempt === 10) {
      warn(`could not remove the volume ${volume} on VM ${vmid}: ${result.stderr.trim()}`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(ctx.options.pollIntervalMs, 5000)));
  }
}
