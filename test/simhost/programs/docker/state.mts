// The docker emulation's shared state: the objects kept in <state>/docker.json,
// the lock around every read-modify-write of it, deterministic ids, the
// daemon's refusals, and the command context every subcommand receives.

import fs from 'node:fs';
import path from 'node:path';

import type { GuestFs, RunOptions } from '../../guestfs.mts';
import { acquireLock, atomicWrite, readJson } from '../../state.mts';
import { guestKindOf, parsePropertyString, readConfigFile } from '../../pveconf.mts';

export const ENGINE_VERSION = '27.3.1';
export const SWARM_PORT = 2377;

// ---------------------------------------------------------------------------
// State

export interface NetworkObj {
  id: string;
  name: string;
  driver: string;
  scope: 'local' | 'swarm';
  attachable: boolean;
  internal: boolean;
  ingress: boolean;
  labels: Record<string, string>;
  created: string;
}

export interface SecretObj {
  id: string;
  name: string;
  labels: Record<string, string>;
  created: string;
  updated: string;
  size: number;
  /** A digest of the data, never the data. */
  hash: string;
}

export interface ServiceObj {
  id: string;
  name: string;
  image: string;
  mode: 'replicated' | 'global';
  replicas: number;
  labels: Record<string, string>;
  containerLabels: Record<string, string>;
  constraints: string[];
  ports: string[];
  networks: string[];
  secrets: string[];
  command: string[];
  version: number;
  forceUpdate: number;
  created: string;
  updated: string;
}

export interface NodeObj {
  id: string;
  vmid: string;
  hostname: string;
  role: 'manager' | 'worker';
  status: 'ready' | 'down';
  availability: 'active' | 'pause' | 'drain';
  addr: string;
  labels: Record<string, string>;
  leader: boolean;
  version: number;
  created: string;
  updated: string;
}

export interface SwarmObj {
  id: string;
  created: string;
  /** First part of the tokens (the CA digest) and the per-role secrets. */
  caPart: string;
  tokens: { worker: string; manager: string };
  nodes: Record<string, NodeObj>;
  networks: Record<string, NetworkObj>;
  secrets: Record<string, SecretObj>;
  services: Record<string, ServiceObj>;
}

export interface ContainerObj {
  id: string;
  name: string;
  image: string;
  command: string;
  ports: string;
  labels: Record<string, string>;
  created: string;
  running: boolean;
}

export interface EngineObj {
  swarm?: { cluster: string; node: string };
  containers: Record<string, ContainerObj>;
  networks: Record<string, NetworkObj>;
  volumes: string[];
}

export interface DockerState {
  serial: number;
  engines: Record<string, EngineObj>;
  swarms: Record<string, SwarmObj>;
}

function stateFile(root: string): string {
  return path.join(root, 'docker.json');
}

export function withDockerState<T>(root: string, fn: (state: DockerState) => T): T {
  const release = acquireLock(`${stateFile(root)}.lock`, { timeoutMs: 30_000 });
  if (!release) throw new Fail(1, 'simhost: could not lock docker.json\n');
  try {
    const state = readJson<DockerState>(stateFile(root), { serial: 0, engines: {}, swarms: {} });
    const result = fn(state);
    atomicWrite(stateFile(root), `${JSON.stringify(state, null, 2)}\n`);
    return result;
  } finally {
    release();
  }
}

/** The engine's answer to one command; thrown to end it early with a status. */
export class Fail extends Error {
  readonly exit: number;
  readonly stdout: string;
  constructor(exit: number, stderr: string, stdout = '') {
    super(stderr);
    this.exit = exit;
    this.stdout = stdout;
  }
}

export const daemon = (message: string): never => {
  throw new Fail(1, `Error response from daemon: ${message}\n`);
};
export const rpc = (code: string, message: string): never => daemon(`rpc error: code = ${code} desc = ${message}`);

const NOT_IN_SWARM = 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';
const WORKER_ONLY = "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.";
export const ALREADY_IN_SWARM = 'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.';

const B36 = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A deterministic id of `length` characters from the state's counter. */
export function newId(state: DockerState, length = 25, alphabet = B36): string {
  state.serial += 1;
  let x = (state.serial * 2654435761) >>> 0;
  let out = '';
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x ^ (x >>> 15), 2246822519) + 3266489917 + i) >>> 0;
    out += alphabet[x % alphabet.length];
  }
  return out;
}

export const hexId = (state: DockerState, length = 64): string => newId(state, length, '0123456789abcdef');

export function contentHash(data: Buffer): string {
  let h = 0x811c9dc5;
  let g = 0x01000193;
  for (const byte of data) {
    h = Math.imul(h ^ byte, 0x01000193) >>> 0;
    g = Math.imul(g + byte, 0x85ebca6b) >>> 0;
  }
  return `${h.toString(16).padStart(8, '0')}${g.toString(16).padStart(8, '0')}${data.length.toString(16)}`;
}

export const now = (): string => new Date().toISOString();

export function engineOf(state: DockerState, vmid: string): EngineObj {
  return (state.engines[vmid] ??= { containers: {}, networks: {}, volumes: [] });
}

export interface Membership {
  swarm: SwarmObj;
  node: NodeObj;
}

export function membership(state: DockerState, vmid: string): Membership | undefined {
  const link = state.engines[vmid]?.swarm;
  if (!link) return undefined;
  const swarm = state.swarms[link.cluster];
  const node = swarm?.nodes[link.node];
  return swarm && node ? { swarm, node } : undefined;
}

/** The swarm of a manager engine, or the daemon's refusal. */
export function managerSwarm(state: DockerState, vmid: string): Membership {
  const m = membership(state, vmid);
  if (!m) {
    if (state.engines[vmid]?.swarm) daemon(WORKER_ONLY);
    return daemon(NOT_IN_SWARM);
  }
  if (m.node.role !== 'manager') daemon(WORKER_ONLY);
  return m;
}

// ---------------------------------------------------------------------------
// The guest: its hostname and address as Proxmox and cloud-init set them

export interface GuestIdentity {
  hostname: string;
  ip: string | undefined;
}

export function identity(g: GuestFs, options: RunOptions): GuestIdentity {
  const root = options.root;
  if (root) {
    const kind = guestKindOf(root, options.vmid);
    const config = kind ? readConfigFile(root, kind, options.vmid) : undefined;
    if (config && kind) {
      const props = config.main.props;
      const hostname = kind === 'qemu' ? props.name : props.hostname;
      const ipSource = kind === 'qemu' ? props.ipconfig0 : props.net0;
      const ip = ipSource ? /^([\d.]+)/.exec(parsePropertyString(ipSource).ip ?? '')?.[1] : undefined;
      if (hostname) return { hostname, ip };
    }
  }
  const st = g.stat('/etc/hostname');
  return { hostname: st ? fs.readFileSync(g.resolve('/etc/hostname'), 'utf8').trim() : `guest-${options.vmid}`, ip: undefined };
}

// ---------------------------------------------------------------------------
// What every subcommand receives

export interface Ctx {
  g: GuestFs;
  options: RunOptions;
  vmid: string;
  stdin: Buffer | undefined;
  out: string;
  err: string;
}

export type Handler = (ctx: Ctx, args: readonly string[]) => void;

export function rootOf(ctx: Ctx): string {
  if (!ctx.options.root) throw new Fail(1, 'simhost: docker needs the simulator state directory\n');
  return ctx.options.root;
}
