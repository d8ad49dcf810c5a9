// The docker commands swarm-manager runs inside the Swarm's VMs, through the
// guest agent (qm.guestExec polls them to their real exit: the bash took
// qm's 30 s wait for success). Each is an argument vector run
// without a shell in the guest, so no manifest value is ever parsed as shell
// (the bash built `bash -c "docker ... ${label}"` strings). Read-only
// commands are marked so, and still run in a dry-run: the plan is computed
// from the swarm as it is.

import * as qm from '../pve/qm.mts';
import { PhoenixError } from '../core/errors.mts';
import type { PhoenixOptions } from '../core/env.mts';

export interface DockerRunOptions {
  mutating?: boolean;
  input?: string;
  allowFailure?: boolean;
  secrets?: readonly string[];
}

/** How long guest commands may take, from the run options (PHOENIX_GUEST_TIMEOUT, PHOENIX_POLL_INTERVAL_MS). */
export interface GuestTiming {
  timeoutMs: number;
  pollMs: number;
}

export function guestTiming(options: PhoenixOptions): GuestTiming {
  return { timeoutMs: options.guestTimeoutSeconds * 1000, pollMs: Math.min(options.pollIntervalMs, 2000) };
}

export function runInGuest(vmid: string, argv: readonly string[], timing: GuestTiming, options: DockerRunOptions = {}): Promise<qm.GuestExecResult> {
  return qm.guestExec(vmid, argv, {
    mutating: options.mutating ?? true,
    timeoutMs: timing.timeoutMs,
    pollMs: timing.pollMs,
    ...(options.input === undefined ? {} : { input: options.input }),
    ...(options.allowFailure === undefined ? {} : { allowFailure: options.allowFailure }),
    ...(options.secrets === undefined ? {} : { secrets: options.secrets }),
  });
}

export function docker(vmid: string, args: readonly string[], timing: GuestTiming, options: DockerRunOptions = {}): Promise<qm.GuestExecResult> {
  return runInGuest(vmid, ['docker', ...args], timing, options);
}

export function dockerQuery(vmid: string, args: readonly string[], timing: GuestTiming, options: Omit<DockerRunOptions, 'mutating'> = {}): Promise<qm.GuestExecResult> {
  return docker(vmid, args, timing, { ...options, mutating: false });
}

/** `docker info --format '{{json .Swarm}}'`: the engine's own view of its swarm membership. */
export interface SwarmInfo {
  NodeID: string;
  NodeAddr: string;
  LocalNodeState: 'inactive' | 'pending' | 'active' | 'error' | 'locked' | string;
  ControlAvailable: boolean;
  Error: string;
  RemoteManagers: Array<{ NodeID: string; Addr: string }> | null;
  Cluster?: { ID: string } | null;
}

export async function swarmInfo(vmid: string, timing: GuestTiming): Promise<SwarmInfo> {
  const result = await dockerQuery(vmid, ['info', '--format', '{{json .Swarm}}'], timing);
  return parseJson<SwarmInfo>(result.stdout, `docker info in VM ${vmid}`);
}

/** One node as `docker node inspect` shows it (the fields Phoenix reads). */
export interface NodeDetails {
  ID: string;
  Spec: { Role: 'manager' | 'worker'; Availability: string; Labels?: Record<string, string> | null };
  Description: { Hostname: string };
  Status: { State: string; Addr?: string };
}

/** The node as the manager knows it, or undefined when the manager has no such node. */
export async function inspectNode(managerVmid: string, node: string, timing: GuestTiming): Promise<NodeDetails | undefined> {
  const result = await dockerQuery(managerVmid, ['node', 'inspect', '--format', '{{json .}}', node], timing, { allowFailure: true });
  if (result.exitcode !== 0) {
    if (/no such node|not found/i.test(result.stderr)) return undefined;
    throw new PhoenixError(`'docker node inspect ${node}' failed in VM ${managerVmid}: ${result.stderr.trim()}`);
  }
  return parseJson<NodeDetails>(result.stdout, `docker node inspect in VM ${managerVmid}`);
}

/** `docker node ls --format '{{json .}}'`, one object per node. */
export interface NodeRow {
  ID: string;
  Hostname: string;
  Status: string;
  Availability: string;
  ManagerStatus: string;
  Self: boolean;
}

export async function listNodes(managerVmid: string, timing: GuestTiming): Promise<NodeRow[]> {
  const result = await dockerQuery(managerVmid, ['node', 'ls', '--format', '{{json .}}'], timing);
  return jsonLines<NodeRow>(result.stdout, `docker node ls in VM ${managerVmid}`);
}

export function parseJson<T>(text: string, what: string): T {
  try {
    return JSON.parse(text.trim()) as T;
  } catch {
    throw new PhoenixError(`unexpected output from ${what}: ${text.trim().slice(0, 200) || '(empty)'}`);
  }
}

export function jsonLines<T>(text: string, what: string): T[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => parseJson<T>(line, what));
}
