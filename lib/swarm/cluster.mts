// The Swarm itself: which VM is its manager, `init`, `join`, node labels and
// `status` (swarm-manager.sh). Each action first reads
// the engines' own state (`docker info` .Swarm, `docker node inspect`) and
// changes only what differs:
//
// - init on an active manager changes nothing (the bash failed: "already
//   part of a swarm"); a VM that is a worker elsewhere is refused, never
//   re-initialised with --force-new-cluster;
// - join of a node the manager already lists as ready changes nothing (the
//   bash always ran `swarm leave --force` first); membership is decided by
//   node ID, not by matching a name filter's status to `Ready`, and stale
//   `Down` entries of the same host are removed after a rejoin, since they
//   make the host's name ambiguous;
// - labels are compared with the node's and only missing ones are added,
//   addressed by node ID rather than by assuming hostname == VM name.
//
// The join token is read from the manager into memory, registered for
// redaction, and handed to the joining VM on stdin: `xargs` puts it on the
// docker command line inside the guest, because the docker CLI takes it
// only as `--token` (there is no file or stdin form). It is never in the
// host's argument vectors, the simulator's call record or a log line.

import * as qm from '../pve/qm.mts';
import { ConfigError, PhoenixError } from '../core/errors.mts';
import { info, success, warn } from '../core/log.mts';
import { addSecret } from '../core/redact.mts';
import { isDryRun } from '../core/context.mts';
import type { PhoenixConfig } from '../config/load.mts';
import type { VmConfig } from '../config/types.mts';
import { docker, dockerQuery, inspectNode, listNodes, runInGuest, swarmInfo, type GuestTiming, type SwarmInfo } from './docker.mts';

/** Docker's Swarm management port (upstream literal). */
export const SWARM_PORT = 2377;

export interface SwarmContext {
  config: PhoenixConfig;
  timing: GuestTiming;
}

export interface SwarmMember {
  vmid: string;
  vm: VmConfig;
  /** Index in phoenix_vm_configs.json `vms`, for messages. */
  index: number;
  /** The address without its prefix length, or undefined for DHCP. */
  ip: string | undefined;
}

export type Outcome = 'changed' | 'unchanged';

export function member(config: PhoenixConfig, vmid: string): SwarmMember | undefined {
  const index = config.vm.vms.findIndex((vm) => String(vm.vmid) === vmid);
  const vm = config.vm.vms[index];
  if (vm === undefined) return undefined;
  const raw = vm.network_config?.ip;
  return { vmid, vm, index, ip: raw === undefined || raw === 'dhcp' ? undefined : (raw.split('/')[0] as string) };
}

/** The Swarm's first manager: the first VM with swarm_role "manager" (as the bash chose it). */
export function swarmManager(config: PhoenixConfig): SwarmMember & { ip: string } {
  const vm = config.vm.vms.find((v) => v.swarm_role === 'manager');
  if (!vm) throw new PhoenixError(`No VM with swarm_role 'manager' found in ${config.paths.vm}.`);
  const found = member(config, String(vm.vmid)) as SwarmMember;
  if (found.ip === undefined) {
    throw new ConfigError(config.paths.vm, `/vms/${found.index}/network_config/ip`, `the Swarm manager VM ${found.vmid} needs a static address to advertise`, 'set network_config.ip to an address such as 10.0.0.21/24');
  }
  return { ...found, ip: found.ip };
}

export async function requireRunning(vmid: string): Promise<void> {
  const state = await qm.status(vmid);
  if (state === 'running') return;
  throw new PhoenixError(`VM ${vmid} is ${state === 'absent' ? 'not created' : 'not running'}`, { hint: state === 'absent' ? `phoenix create ${vmid}` : `phoenix start ${vmid}` });
}

/** The manager must be an active manager before anything joins it or is deployed on it. */
export async function requireActiveManager(context: SwarmContext, manager: SwarmMember): Promise<SwarmInfo> {
  const state = await swarmInfo(manager.vmid, context.timing);
  if (state.LocalNodeState !== 'active' || !state.ControlAvailable) {
    throw new PhoenixError(`the Swarm is not initialised on manager VM ${manager.vmid} (state: ${state.LocalNodeState}${state.ControlAvailable ? '' : ', not a manager'})`, {
      hint: 'run swarm-manager.sh init first',
    });
  }
  return state;
}

// ---------------------------------------------------------------- init

export async function initSwarm(context: SwarmContext): Promise<Outcome> {
  const manager = swarmManager(context.config);
  info(`Initializing Docker Swarm on manager node VM ${manager.vmid} (${manager.ip})...`);
  await requireRunning(manager.vmid);
  const state = await swarmInfo(manager.vmid, context.timing);
  let outcome: Outcome = 'unchanged';
  let nodeId: string | undefined = state.NodeID || undefined;
  switch (state.LocalNodeState) {
    case 'active':
      if (!state.ControlAvailable) {
        const managers = (state.RemoteManagers ?? []).map((m) => m.Addr).join(', ') || 'unknown';
        throw new PhoenixError(`VM ${manager.vmid} is a worker of another swarm (managers: ${managers}); it cannot become this swarm's manager`, {
          hint: `leave that swarm in VM ${manager.vmid} (docker swarm leave), then run init again`,
        });
      }
      if (state.NodeAddr && state.NodeAddr !== manager.ip) warn(`the swarm on VM ${manager.vmid} advertises ${state.NodeAddr}, the manifest says ${manager.ip}`);
      success(`Docker Swarm already active on VM ${manager.vmid} (node ${state.NodeID}); nothing to do.`);
      break;
    case 'inactive':
      await docker(manager.vmid, ['swarm', 'init', '--advertise-addr', manager.ip], context.timing);
      outcome = 'changed';
      if (isDryRun()) {
        nodeId = undefined;
      } else {
        const after = await swarmInfo(manager.vmid, context.timing);
        if (after.LocalNodeState !== 'active') throw new PhoenixError(`docker swarm init on VM ${manager.vmid} returned, but the node is ${after.LocalNodeState}: ${after.Error}`);
        nodeId = after.NodeID;
        success(`Docker Swarm initialized on VM ${manager.vmid} (node ${nodeId}).`);
      }
      break;
    default:
      throw new PhoenixError(`the Docker engine of VM ${manager.vmid} is in swarm state '${state.LocalNodeState}'${state.Error ? `: ${state.Error}` : ''}`, {
        hint: state.LocalNodeState === 'locked' ? 'unlock it with docker swarm unlock' : 'check docker info in the VM',
      });
  }
  const labelled = await applyNodeLabels(context, manager, manager, nodeId);
  return outcome === 'changed' || labelled === 'changed' ? 'changed' : 'unchanged';
}

// ---------------------------------------------------------------- join

export async function joinSwarm(context: SwarmContext, vmid: string): Promise<Outcome> {
  const target = member(context.config, vmid);
  if (!target) throw new PhoenixError(`VM ${vmid} not found in configuration (${context.config.paths.vm}).`);
  const role = target.vm.swarm_role;
  if (role === undefined) throw new PhoenixError(`VM ${vmid} does not have a 'swarm_role' defined.`);
  const manager = swarmManager(context.config);
  if (manager.vmid === vmid) {
    throw new PhoenixError(`VM ${vmid} is the Swarm's first manager; it is not joined but initialised`, { hint: 'swarm-manager.sh init' });
  }
  info(`Joining VM ${vmid} to the swarm as a ${role}...`);
  await requireRunning(manager.vmid);
  await requireRunning(vmid);
  await requireActiveManager(context, manager);

  const state = await swarmInfo(vmid, context.timing);
  if (state.LocalNodeState === 'locked') throw new PhoenixError(`the Docker engine of VM ${vmid} is locked (swarm autolock)`, { hint: 'docker swarm unlock in the VM' });
  if (state.LocalNodeState === 'active' && state.NodeID) {
    const known = await inspectNode(manager.vmid, state.NodeID, context.timing);
    if (known && known.Status.State === 'ready') {
      if (known.Spec.Role !== role) warn(`VM ${vmid} is a ${known.Spec.Role} of the swarm, the manifest says ${role}; change it with docker node ${role === 'manager' ? 'promote' : 'demote'} ${state.NodeID}`);
      success(`VM ${vmid} is already in the swarm (node ${state.NodeID}, ${known.Spec.Role}); nothing to do.`);
      await removeStaleNodes(context, manager, known.Description.Hostname, state.NodeID);
      const labelled = await applyNodeLabels(context, manager, target, state.NodeID);
      return labelled;
    }
  }
  if (state.LocalNodeState !== 'inactive') {
    warn(`VM ${vmid} is ${state.LocalNodeState} in a swarm this manager does not list as ready; leaving it before joining`);
    await docker(vmid, ['swarm', 'leave', '--force'], context.timing);
  }

  let token = '';
  if (isDryRun()) {
    info(`DRY-RUN: would read the ${role} join token on VM ${manager.vmid} and pass it to VM ${vmid} on stdin`);
  } else {
    const result = await dockerQuery(manager.vmid, ['swarm', 'join-token', '-q', role], context.timing);
    token = result.stdout.replace(/\s+/g, '');
    addSecret(token);
    if (token === '') throw new PhoenixError(`Failed to retrieve ${role} join token.`);
  }
  // xargs reads the token from stdin and runs `docker swarm join --token <it> ...`.
  const argv = ['xargs', '-r', '-I', '{}', 'docker', 'swarm', 'join', '--token', '{}'];
  if (target.ip !== undefined) argv.push('--advertise-addr', target.ip);
  argv.push(`${manager.ip}:${SWARM_PORT}`);
  await runInGuest(vmid, argv, context.timing, { input: `${token}\n`, secrets: token ? [token] : [] });
  if (isDryRun()) {
    await applyNodeLabels(context, manager, target, undefined);
    return 'changed';
  }
  const after = await swarmInfo(vmid, context.timing);
  if (after.LocalNodeState !== 'active' || !after.NodeID) {
    throw new PhoenixError(`VM ${vmid} ran docker swarm join but is ${after.LocalNodeState}${after.Error ? `: ${after.Error}` : ''}`);
  }
  success(`VM ${vmid} successfully joined the swarm (node ${after.NodeID}).`);
  const joined = await inspectNode(manager.vmid, after.NodeID, context.timing);
  if (joined) await removeStaleNodes(context, manager, joined.Description.Hostname, after.NodeID);
  await applyNodeLabels(context, manager, target, after.NodeID);
  return 'changed';
}

/** Entries of the same host left `Down` by earlier joins: they make the host's name ambiguous. */
async function removeStaleNodes(context: SwarmContext, manager: SwarmMember, hostname: string, keep: string): Promise<void> {
  const stale = (await listNodes(manager.vmid, context.timing)).filter((n) => n.Hostname === hostname && n.ID !== keep && n.Status.toLowerCase() === 'down');
  if (stale.length === 0) return;
  info(`Removing ${stale.length} stale node entr${stale.length === 1 ? 'y' : 'ies'} of ${hostname} (Down): ${stale.map((n) => n.ID).join(' ')}`);
  await docker(manager.vmid, ['node', 'rm', ...stale.map((n) => n.ID)], context.timing);
}

// ---------------------------------------------------------------- labels

export function wantedLabels(vm: VmConfig): Array<[string, string]> {
  return (vm.node_labels ?? []).map((label) => {
    const eq = label.indexOf('=');
    return eq === -1 ? [label, ''] : [label.slice(0, eq), label.slice(eq + 1)];
  });
}

/**
 * Add the VM's node_labels the node lacks (or has with another value).
 * Labels set by hand and not in the manifest are left alone.
 */
export async function applyNodeLabels(context: SwarmContext, manager: SwarmMember, target: SwarmMember, nodeId: string | undefined): Promise<Outcome> {
  const wanted = wantedLabels(target.vm);
  if (wanted.length === 0) {
    info(`No node labels to apply for VM ${target.vmid}.`);
    return 'unchanged';
  }
  if (nodeId === undefined) {
    info(`DRY-RUN: would label the node of VM ${target.vmid}: ${wanted.map(([k, v]) => `${k}=${v}`).join(' ')}`);
    return 'changed';
  }
  const node = await inspectNode(manager.vmid, nodeId, context.timing);
  if (!node) throw new PhoenixError(`the manager VM ${manager.vmid} does not know node ${nodeId} of VM ${target.vmid}`);
  const current = node.Spec.Labels ?? {};
  const missing = wanted.filter(([k, v]) => current[k] !== v);
  if (missing.length === 0) {
    info(`Node labels of VM ${target.vmid} already set (${wanted.map(([k, v]) => `${k}=${v}`).join(' ')}).`);
    return 'unchanged';
  }
  info(`Applying node labels to VM ${target.vmid} (node ${nodeId}): ${missing.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  await docker(manager.vmid, ['node', 'update', ...missing.flatMap(([k, v]) => ['--label-add', `${k}=${v}`]), nodeId], context.timing);
  return 'changed';
}

// ---------------------------------------------------------------- status

/** `docker node ls` and `docker stack ls` of the manager, as text for stdout. */
export async function swarmStatus(context: SwarmContext): Promise<string> {
  const manager = swarmManager(context.config);
  info(`Getting Docker Swarm status from manager VM ${manager.vmid}...`);
  await requireRunning(manager.vmid);
  const nodes = await dockerQuery(manager.vmid, ['node', 'ls'], context.timing);
  const stacks = await dockerQuery(manager.vmid, ['stack', 'ls'], context.timing);
  return `${nodes.stdout.replace(/\n?$/, '\n')}\n${stacks.stdout.replace(/\n?$/, '\n')}`;
}
