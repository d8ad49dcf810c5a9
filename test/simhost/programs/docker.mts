// `docker` inside simulated VMs: the engine commands Phoenix's swarm- and
// portainer-manager run through `qm guest exec`, with a Swarm
// whose state is shared by every guest in <state>/docker.json (one lock file
// beside it). What is modelled is what orchestration code relies on:
//
// - swarm init / join-token / join / leave, with the engine's own view in
//   `docker info` (.Swarm as the Engine API returns it) and the refusals of
//   the real daemon (already part of a swarm, not a manager, bad token, no
//   manager at the address, last manager leaving without --force);
// - nodes (ls, inspect, update --label-add/--label-rm, rm, promote/demote),
//   addressed by ID, unique ID prefix, hostname (ambiguous when a stale
//   entry shares it) or `self`;
// - stacks from a compose file or stdin (`-c -`): YAML parsed, interpolated
//   like the docker CLI (the guest has no variables set: `${X}` is empty,
//   `$$` is a dollar, `${X:?msg}` fails), external networks and secrets
//   required, networks/secrets/services created with the stack namespace
//   label, services updated in place; stack ls / services / rm;
// - services (ls, inspect, update --force, rm), secrets (create from a file
//   or stdin, ls, inspect, rm; only a digest of the data is kept, and a
//   secret in use cannot be removed), networks (ls, create, inspect, rm),
//   volumes, and standalone containers (run -d, rm, ps, which also lists a
//   node's service tasks, placed by the services' constraints).
//
// Nothing is pulled or run: an image is a name, a task is a row. Node IDs,
// tokens and object IDs come from a counter in the state, so a given
// sequence of commands gives the same IDs every time (golden transcripts).
//
// `xargs` is emulated here too (it runs its command through the guest's
// command table): it is how a secret reaches a command line inside a guest
// without passing through the host's argument vectors.
//
// In containers (`pct exec`) docker stays an unmodelled program (exit 0,
// recorded only), so tests of the LXC features keep scripting its answers.

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

import { guestPrograms, runCommand, type ExecResult, type GuestFs, type RunOptions } from '../guestfs.mts';
import { acquireLock, atomicWrite, readJson } from '../state.mts';
import { guestKindOf, parsePropertyString, readConfigFile } from '../pveconf.mts';

export const ENGINE_VERSION = '27.3.1';
export const SWARM_PORT = 2377;

// ---------------------------------------------------------------------------
// State

interface NetworkObj {
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

interface SecretObj {
  id: string;
  name: string;
  labels: Record<string, string>;
  created: string;
  updated: string;
  size: number;
  /** A digest of the data, never the data. */
  hash: string;
}

interface ServiceObj {
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

interface NodeObj {
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

interface SwarmObj {
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

interface ContainerObj {
  id: string;
  name: string;
  image: string;
  command: string;
  ports: string;
  labels: Record<string, string>;
  created: string;
  running: boolean;
}

interface EngineObj {
  swarm?: { cluster: string; node: string };
  containers: Record<string, ContainerObj>;
  networks: Record<string, NetworkObj>;
  volumes: string[];
}

interface DockerState {
  serial: number;
  engines: Record<string, EngineObj>;
  swarms: Record<string, SwarmObj>;
}

function stateFile(root: string): string {
  return path.join(root, 'docker.json');
}

function withDockerState<T>(root: string, fn: (state: DockerState) => T): T {
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
class Fail extends Error {
  readonly exit: number;
  readonly stdout: string;
  constructor(exit: number, stderr: string, stdout = '') {
    super(stderr);
    this.exit = exit;
    this.stdout = stdout;
  }
}

const daemon = (message: string): never => {
  throw new Fail(1, `Error response from daemon: ${message}\n`);
};
const rpc = (code: string, message: string): never => daemon(`rpc error: code = ${code} desc = ${message}`);

const NOT_IN_SWARM = 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';
const WORKER_ONLY = "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.";
const ALREADY_IN_SWARM = 'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.';

const B36 = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A deterministic id of `length` characters from the state's counter. */
function newId(state: DockerState, length = 25, alphabet = B36): string {
  state.serial += 1;
  let x = (state.serial * 2654435761) >>> 0;
  let out = '';
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x ^ (x >>> 15), 2246822519) + 3266489917 + i) >>> 0;
    out += alphabet[x % alphabet.length];
  }
  return out;
}

const hexId = (state: DockerState, length = 64): string => newId(state, length, '0123456789abcdef');

function contentHash(data: Buffer): string {
  let h = 0x811c9dc5;
  let g = 0x01000193;
  for (const byte of data) {
    h = Math.imul(h ^ byte, 0x01000193) >>> 0;
    g = Math.imul(g + byte, 0x85ebca6b) >>> 0;
  }
  return `${h.toString(16).padStart(8, '0')}${g.toString(16).padStart(8, '0')}${data.length.toString(16)}`;
}

const now = (): string => new Date().toISOString();

function engineOf(state: DockerState, vmid: string): EngineObj {
  return (state.engines[vmid] ??= { containers: {}, networks: {}, volumes: [] });
}

interface Membership {
  swarm: SwarmObj;
  node: NodeObj;
}

function membership(state: DockerState, vmid: string): Membership | undefined {
  const link = state.engines[vmid]?.swarm;
  if (!link) return undefined;
  const swarm = state.swarms[link.cluster];
  const node = swarm?.nodes[link.node];
  return swarm && node ? { swarm, node } : undefined;
}

/** The swarm of a manager engine, or the daemon's refusal. */
function managerSwarm(state: DockerState, vmid: string): Membership {
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

interface GuestIdentity {
  hostname: string;
  ip: string | undefined;
}

function identity(g: GuestFs, options: RunOptions): GuestIdentity {
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
// Flags, cobra style

interface FlagSpec {
  /** Flags that take a value (long and short names). */
  values?: string[];
  /** Flags that may be repeated. */
  multi?: string[];
  bools?: string[];
  /** `docker run IMAGE --flag`: flags after the first operand belong to the container's command. */
  stopAtOperand?: boolean;
}

interface Parsed {
  values: Map<string, string[]>;
  bools: Set<string>;
  operands: string[];
}

function parseFlags(command: string, args: readonly string[], spec: FlagSpec): Parsed {
  const values = new Map<string, string[]>();
  const bools = new Set<string>();
  const operands: string[] = [];
  const takes = new Set([...(spec.values ?? []), ...(spec.multi ?? [])]);
  const isBool = new Set([...(spec.bools ?? []), '--help']);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') {
      operands.push(...args.slice(i + 1));
      break;
    }
    if (arg === '-' || !arg.startsWith('-')) {
      if (spec.stopAtOperand) {
        operands.push(...args.slice(i));
        break;
      }
      operands.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (takes.has(name)) {
      let value: string | undefined;
      if (eq !== -1) value = arg.slice(eq + 1);
      else {
        value = args[i + 1];
        i++;
      }
      if (value === undefined) throw new Fail(125, `flag needs an argument: ${name}\nSee 'docker ${command} --help'.\n`);
      const list = values.get(name) ?? [];
      list.push(value);
      values.set(name, list);
      continue;
    }
    if (isBool.has(name)) {
      bools.add(name);
      continue;
    }
    throw new Fail(125, `unknown ${name.startsWith('--') ? 'flag' : 'shorthand flag'}: ${name.startsWith('--') ? name : `'${name.slice(1)}' in ${name}`}\nSee 'docker ${command} --help'.\n`);
  }
  return { values, bools, operands };
}

const one = (p: Parsed, ...names: string[]): string | undefined => {
  for (const n of names) {
    const v = p.values.get(n);
    if (v && v.length) return v[v.length - 1];
  }
  return undefined;
};
const many = (p: Parsed, ...names: string[]): string[] => names.flatMap((n) => p.values.get(n) ?? []);
const has = (p: Parsed, ...names: string[]): boolean => names.some((n) => p.bools.has(n));

function requireArgs(command: string, p: Parsed, min: number, max = min, usage = ''): void {
  const n = p.operands.length;
  if (n >= min && n <= max) return;
  const what = min === max ? `exactly ${min} argument${min === 1 ? '' : 's'}` : max === Infinity ? `at least ${min} argument${min === 1 ? '' : 's'}` : `at most ${max} argument${max === 1 ? '' : 's'}`;
  throw new Fail(1, `"docker ${command}" requires ${what}.\nSee 'docker ${command} --help'.\n\nUsage:  docker ${command} ${usage}\n`);
}

// ---------------------------------------------------------------------------
// --format: the part of Go's text/template docker users write

function lookup(data: unknown, pathExpr: string): unknown {
  if (pathExpr === '.') return data;
  let value: unknown = data;
  for (const part of pathExpr.replace(/^\./, '').split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function goString(value: unknown): string {
  if (value === undefined) return '<no value>';
  if (value === null) return '<nil>';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `[${value.map(goString).join(' ')}]`;
  return `map[${Object.entries(value as Record<string, unknown>)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}:${goString(v)}`)
    .join(' ')}]`;
}

function evalAction(action: string, data: unknown): string {
  const words = action.match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? [];
  const arg = (w: string | undefined): unknown => (w === undefined ? undefined : w.startsWith('"') ? JSON.parse(w) : lookup(data, w));
  const [head, ...rest] = words;
  if (head === undefined) throw new Fail(1, `template parsing error: template: :1: missing value for command\n`);
  if (head.startsWith('.')) return goString(lookup(data, head));
  switch (head) {
    case 'json':
      return JSON.stringify(arg(rest[0]) ?? null);
    case 'index': {
      const container = arg(rest[0]) as Record<string, unknown> | undefined;
      const key = arg(rest[1]) as string;
      return goString(container?.[key] ?? (container ? '' : undefined));
    }
    case 'join': {
      const list = (arg(rest[0]) as unknown[] | undefined) ?? [];
      return list.map(goString).join(String(arg(rest[1]) ?? ''));
    }
    case 'lower':
      return goString(arg(rest[0])).toLowerCase();
    case 'upper':
      return goString(arg(rest[0])).toUpperCase();
    case 'println':
      return `${rest.map((w) => goString(arg(w))).join(' ')}\n`;
    default:
      throw new Fail(1, `template parsing error: template: :1: function "${head}" not defined\n`);
  }
}

function renderFormat(format: string, data: unknown): string {
  const tpl = format.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  return tpl.replace(/\{\{-?\s*(.*?)\s*-?\}\}/g, (_m, action: string) => evalAction(action, data));
}

function formatRows(format: string | undefined, rows: readonly unknown[], table: () => string): string {
  if (format === undefined || format === '' || format === 'table') return table();
  if (format === 'json') return rows.map((r) => `${JSON.stringify(r)}\n`).join('');
  const body = format.startsWith('table ') ? format.slice(6) : format;
  return rows.map((r) => `${renderFormat(body, r)}\n`).join('');
}

/** Columns padded like docker's tabwriter (3 spaces between columns). */
function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd((widths[i] ?? 0) + 3)))
      .join('')
      .trimEnd();
  return [header, ...rows].map((r) => `${line(r)}\n`).join('');
}

// ---------------------------------------------------------------------------
// Filters

function filtersOf(p: Parsed): Array<[string, string]> {
  return many(p, '--filter', '-f').map((f) => {
    const eq = f.indexOf('=');
    if (eq === -1) throw new Fail(1, `Error response from daemon: bad format of filter (expected name=value)\n`);
    return [f.slice(0, eq), f.slice(eq + 1)];
  });
}

function labelMatches(labels: Record<string, string>, filter: string): boolean {
  const eq = filter.indexOf('=');
  if (eq === -1) return Object.hasOwn(labels, filter);
  return labels[filter.slice(0, eq)] === filter.slice(eq + 1);
}

// ---------------------------------------------------------------------------
// Commands

interface Ctx {
  g: GuestFs;
  options: RunOptions;
  vmid: string;
  stdin: Buffer | undefined;
  out: string;
  err: string;
}

type Handler = (ctx: Ctx, args: readonly string[]) => void;

function infoCmd(ctx: Ctx, args: readonly string[]): void {
  const p = parseFlags('info', args, { values: ['--format', '-f'] });
  const data = withDockerState(rootOf(ctx), (state) => {
    const engine = engineOf(state, ctx.vmid);
    const m = membership(state, ctx.vmid);
    const ident = identity(ctx.g, ctx.options);
    let swarm: Record<string, unknown>;
    if (!engine.swarm) {
      swarm = { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null };
    } else if (!m) {
      // Its swarm is gone (the last manager left): the engine keeps trying.
      swarm = { NodeID: engine.swarm.node, NodeAddr: ident.ip ?? '', LocalNodeState: 'pending', ControlAvailable: false, Error: 'rpc error: code = Unavailable desc = connection error', RemoteManagers: [] };
    } else {
      const managers = Object.values(m.swarm.nodes).filter((n) => n.role === 'manager' && n.status === 'ready');
      swarm = {
        NodeID: m.node.id,
        NodeAddr: m.node.addr,
        LocalNodeState: 'active',
        ControlAvailable: m.node.role === 'manager',
        Error: '',
        RemoteManagers: managers.map((n) => ({ NodeID: n.id, Addr: `${n.addr}:${SWARM_PORT}` })),
      };
      if (m.node.role === 'manager') {
        swarm.Nodes = Object.keys(m.swarm.nodes).length;
        swarm.Managers = managers.length;
        swarm.Cluster = { ID: m.swarm.id, CreatedAt: m.swarm.created, Spec: { Name: 'default' } };
      }
    }
    const containers = Object.values(engine.containers);
    return {
      ID: `${ctx.vmid}`,
      Name: ident.hostname,
      ServerVersion: ENGINE_VERSION,
      OperatingSystem: 'Ubuntu 24.04 LTS',
      Containers: containers.length,
      ContainersRunning: containers.filter((c) => c.running).length,
      Swarm: swarm,
    };
  });
  const format = one(p, '--format', '-f');
  if (format !== undefined) {
    ctx.out += `${renderFormat(format, data)}\n`;
    return;
  }
  const s = data.Swarm as Record<string, unknown>;
  ctx.out += `Client: Docker Engine - Community\n Version:    ${ENGINE_VERSION}\n\nServer:\n Containers: ${data.Containers}\n  Running: ${data.ContainersRunning}\n Server Version: ${ENGINE_VERSION}\n Swarm: ${s.LocalNodeState}\n`;
  if (s.LocalNodeState === 'active') ctx.out += `  NodeID: ${s.NodeID}\n  Is Manager: ${s.ControlAvailable}\n  Node Address: ${s.NodeAddr}\n`;
  ctx.out += ` Operating System: ${data.OperatingSystem}\n Name: ${data.Name}\n`;
}

function rootOf(ctx: Ctx): string {
  if (!ctx.options.root) throw new Fail(1, 'simhost: docker needs the simulator state directory\n');
  return ctx.options.root;
}

function validAddr(addr: string): boolean {
  return /^(\d{1,3}\.){3}\d{1,3}(:\d+)?$/.test(addr) || /^[a-z][a-z0-9]*(:\d+)?$/i.test(addr);
}

function makeNode(state: DockerState, vmid: string, ident: GuestIdentity, role: 'manager' | 'worker', addr: string): NodeObj {
  const t = now();
  return { id: newId(state), vmid, hostname: ident.hostname, role, status: 'ready', availability: 'active', addr, labels: {}, leader: false, version: 1, created: t, updated: t };
}

function swarmCmd(ctx: Ctx, args: readonly string[]): void {
  const [sub, ...rest] = args;
  const root = rootOf(ctx);
  const ident = identity(ctx.g, ctx.options);
  switch (sub) {
    case 'init': {
      const p = parseFlags('swarm init', rest, { values: ['--advertise-addr', '--listen-addr', '--data-path-addr', '--default-addr-pool', '--task-history-limit', '--availability'], bools: ['--force-new-cluster', '--autolock'] });
      requireArgs('swarm init', p, 0, 0, '[OPTIONS]');
      const advertise = one(p, '--advertise-addr') ?? ident.ip;
      if (advertise === undefined) daemon('could not choose an IP address to advertise since this system has multiple addresses on different interfaces (10.0.2.15 on eth0 and 172.17.0.1 on docker0)');
      if (!validAddr(advertise as string)) daemon(`advertise address must be a non-zero IP address or network interface (with optional port number)`);
      const addr = (advertise as string).replace(/:\d+$/, '');
      ctx.out += withDockerState(root, (state) => {
        const engine = engineOf(state, ctx.vmid);
        const m = membership(state, ctx.vmid);
        if (engine.swarm && !has(p, '--force-new-cluster')) daemon(ALREADY_IN_SWARM);
        if (m && has(p, '--force-new-cluster')) {
          if (m.node.role !== 'manager') daemon(ALREADY_IN_SWARM);
          for (const node of Object.values(m.swarm.nodes)) if (node.role === 'manager' && node.id !== m.node.id) delete m.swarm.nodes[node.id];
          m.node.leader = true;
          return `Swarm initialized: current node (${m.node.id}) is now a manager.\n`;
        }
        const caPart = newId(state, 50);
        const t = now();
        const swarm: SwarmObj = {
          id: newId(state),
          created: t,
          caPart,
          tokens: { worker: `SWMTKN-1-${caPart}-${newId(state)}`, manager: `SWMTKN-1-${caPart}-${newId(state)}` },
          nodes: {},
          networks: {},
          secrets: {},
          services: {},
        };
        const ingress: NetworkObj = { id: newId(state), name: 'ingress', driver: 'overlay', scope: 'swarm', attachable: false, internal: false, ingress: true, labels: {}, created: t };
        swarm.networks.ingress = ingress;
        const node = makeNode(state, ctx.vmid, ident, 'manager', addr);
        node.leader = true;
        swarm.nodes[node.id] = node;
        state.swarms[swarm.id] = swarm;
        engine.swarm = { cluster: swarm.id, node: node.id };
        return (
          `Swarm initialized: current node (${node.id}) is now a manager.\n\n` +
          `To add a worker to this swarm, run the following command:\n\n    docker swarm join --token ${swarm.tokens.worker} ${addr}:${SWARM_PORT}\n\n` +
          `To add a manager to this swarm, run 'docker swarm join-token manager' and follow the instructions.\n\n`
        );
      });
      return;
    }
    case 'join-token': {
      const p = parseFlags('swarm join-token', rest, { bools: ['-q', '--quiet', '--rotate'] });
      requireArgs('swarm join-token', p, 1, 1, '[OPTIONS] (worker|manager)');
      const role = p.operands[0] as string;
      if (role !== 'worker' && role !== 'manager') throw new Fail(1, `unknown role ${role}\n`);
      ctx.out += withDockerState(root, (state) => {
        const m = managerSwarm(state, ctx.vmid);
        if (has(p, '--rotate')) m.swarm.tokens[role] = `SWMTKN-1-${m.swarm.caPart}-${newId(state)}`;
        const token = m.swarm.tokens[role];
        if (has(p, '-q', '--quiet')) return `${token}\n`;
        const rotated = has(p, '--rotate') ? `Successfully rotated ${role} join token.\n\n` : '';
        return `${rotated}To add a ${role} to this swarm, run the following command:\n\n    docker swarm join --token ${token} ${m.node.addr}:${SWARM_PORT}\n\n`;
      });
      return;
    }
    case 'join': {
      const p = parseFlags('swarm join', rest, { values: ['--token', '--advertise-addr', '--listen-addr', '--data-path-addr', '--availability'] });
      requireArgs('swarm join', p, 1, 1, '[OPTIONS] HOST:PORT');
      const remote = p.operands[0] as string;
      const token = one(p, '--token') ?? '';
      const advertise = one(p, '--advertise-addr') ?? ident.ip ?? '';
      if (advertise !== '' && !validAddr(advertise)) daemon('advertise address must be a non-zero IP address or network interface (with optional port number)');
      const [host, port = String(SWARM_PORT)] = remote.split(':');
      ctx.out += withDockerState(root, (state) => {
        const engine = engineOf(state, ctx.vmid);
        if (engine.swarm) daemon(ALREADY_IN_SWARM);
        if (!/^SWMTKN-1-[a-z0-9]{50}-[a-z0-9]{25}$/.test(token)) daemon('invalid join token');
        const swarm = Object.values(state.swarms).find((s) => port === String(SWARM_PORT) && Object.values(s.nodes).some((n) => n.role === 'manager' && n.status === 'ready' && n.addr === host));
        if (!swarm) daemon('Timeout was reached before node joined. The attempt to join the swarm will continue in the background. Use the "docker info" command to see the current swarm status of your node.');
        const role = swarm!.tokens.worker === token ? 'worker' : swarm!.tokens.manager === token ? 'manager' : undefined;
        if (!role) rpc('InvalidArgument', 'A valid join token is necessary to join this cluster');
        const node = makeNode(state, ctx.vmid, ident, role as 'worker' | 'manager', advertise.replace(/:\d+$/, '') || host || '');
        swarm!.nodes[node.id] = node;
        engine.swarm = { cluster: swarm!.id, node: node.id };
        return `This node joined a swarm as a ${role}.\n`;
      });
      return;
    }
    case 'leave': {
      const p = parseFlags('swarm leave', rest, { bools: ['--force', '-f'] });
      requireArgs('swarm leave', p, 0, 0, '[OPTIONS]');
      ctx.out += withDockerState(root, (state) => {
        const engine = engineOf(state, ctx.vmid);
        if (!engine.swarm) daemon('This node is not part of a swarm');
        const m = membership(state, ctx.vmid);
        if (m && m.node.role === 'manager') {
          const otherManagers = Object.values(m.swarm.nodes).filter((n) => n.role === 'manager' && n.id !== m.node.id && n.status === 'ready');
          if (!has(p, '--force', '-f')) {
            daemon(
              otherManagers.length === 0
                ? 'You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message.'
                : 'You are attempting to leave the swarm on a node that is participating as a manager. Removing this node leaves ' + otherManagers.length + ' managers out of ' + (otherManagers.length + 1) + '. Use `--force` to ignore this message.',
            );
          }
          if (otherManagers.length === 0) delete state.swarms[m.swarm.id];
          else m.node.status = 'down';
        } else if (m) {
          m.node.status = 'down';
        }
        delete engine.swarm;
        return 'Node left the swarm.\n';
      });
      return;
    }
    case 'unlock':
    case 'update':
    case 'ca':
    case 'unlock-key':
      throw new Fail(1, `simhost: 'docker swarm ${sub}' is not simulated\n`);
    default:
      throw new Fail(1, `docker: 'swarm ${sub ?? ''}' is not a docker command.\nSee 'docker swarm --help'\n`);
  }
}

// ---------------------------------------------------------------------------
// nodes

function nodeRow(node: NodeObj, self: string): Record<string, unknown> {
  return {
    Availability: node.availability[0]!.toUpperCase() + node.availability.slice(1),
    EngineVersion: ENGINE_VERSION,
    Hostname: node.hostname,
    ID: node.id,
    ManagerStatus: node.role === 'manager' ? (node.leader ? 'Leader' : node.status === 'ready' ? 'Reachable' : 'Unreachable') : '',
    Self: node.id === self,
    Status: node.status === 'ready' ? 'Ready' : 'Down',
    TLSStatus: 'Ready',
  };
}

function nodeDetails(node: NodeObj): Record<string, unknown> {
  const details: Record<string, unknown> = {
    ID: node.id,
    Version: { Index: node.version },
    CreatedAt: node.created,
    UpdatedAt: node.updated,
    Spec: { Labels: { ...node.labels }, Role: node.role, Availability: node.availability },
    Description: { Hostname: node.hostname, Platform: { Architecture: 'x86_64', OS: 'linux' }, Engine: { EngineVersion: ENGINE_VERSION } },
    Status: { State: node.status, Addr: node.addr },
  };
  if (node.role === 'manager') details.ManagerStatus = { Leader: node.leader, Reachability: node.status === 'ready' ? 'reachable' : 'unreachable', Addr: `${node.addr}:${SWARM_PORT}` };
  return details;
}

function findNode(m: Membership, ref: string): NodeObj {
  const nodes = Object.values(m.swarm.nodes);
  if (ref === 'self') return m.node;
  const exact = nodes.find((n) => n.id === ref);
  if (exact) return exact;
  const named = nodes.filter((n) => n.hostname === ref);
  if (named.length > 1) daemon(`node ${ref} is ambiguous (${named.length} matches found)`);
  if (named.length === 1) return named[0] as NodeObj;
  const prefixed = nodes.filter((n) => n.id.startsWith(ref));
  if (prefixed.length > 1) daemon(`node ${ref} is ambiguous (${prefixed.length} matches found)`);
  if (prefixed.length === 1) return prefixed[0] as NodeObj;
  return daemon(`node ${ref} not found`);
}

function nodeCmd(ctx: Ctx, args: readonly string[]): void {
  const [sub, ...rest] = args;
  const root = rootOf(ctx);
  switch (sub) {
    case 'ls':
    case 'list': {
      const p = parseFlags('node ls', rest, { values: ['--format'], multi: ['--filter', '-f'], bools: ['-q', '--quiet'] });
      const filters = filtersOf(p);
      ctx.out += withDockerState(root, (state) => {
        const m = managerSwarm(state, ctx.vmid);
        const nodes = Object.values(m.swarm.nodes)
          .filter((n) =>
            filters.every(([k, v]) => {
              if (k === 'name') return n.hostname.includes(v);
              if (k === 'id') return n.id.startsWith(v);
              if (k === 'role') return n.role === v;
              if (k === 'node.label' || k === 'label') return labelMatches(n.labels, v);
              if (k === 'membership') return v === 'accepted';
              return daemon(`invalid filter '${k}'`);
            }),
          )
          .sort((a, b) => (a.hostname === b.hostname ? (a.id < b.id ? -1 : 1) : a.hostname < b.hostname ? -1 : 1));
        if (has(p, '-q', '--quiet')) return nodes.map((n) => `${n.id}\n`).join('');
        const rows = nodes.map((n) => nodeRow(n, m.node.id));
        return formatRows(one(p, '--format'), rows, () =>
          table(
            ['ID', 'HOSTNAME', 'STATUS', 'AVAILABILITY', 'MANAGER STATUS', 'ENGINE VERSION'],
            rows.map((r) => [`${r.ID}${r.Self ? ' *' : ''}`, String(r.Hostname), String(r.Status), String(r.Availability), String(r.ManagerStatus), String(r.EngineVersion)]),
          ),
        );
      });
      return;
    }
    case 'inspect': {
      const p = parseFlags('node inspect', rest, { values: ['--format', '-f'], bools: ['--pretty'] });
      requireArgs('node inspect', p, 1, Infinity, '[OPTIONS] self|NODE [NODE...]');
      const result = withDockerState(root, (state) => {
        const m = managerSwarm(state, ctx.vmid);
        const found: Record<string, unknown>[] = [];
        for (const ref of p.operands) {
          try {
            found.push(nodeDetails(findNode(m, ref)));
          } catch (error) {
            if (error instanceof Fail && /not found/.test(error.message)) return { found, missing: ref };
            throw error;
          }
        }
        return { found, missing: undefined };
      });
      const format = one(p, '--format', '-f');
      if (format !== undefined) ctx.out += result.found.map((n) => `${renderFormat(format, n)}\n`).join('');
      else ctx.out += `${JSON.stringify(result.found, null, 4)}\n`;
      if (result.missing !== undefined) throw new Fail(1, `Error: No such node: ${result.missing}\n`, ctx.out);
      return;
    }
    case 'update': {
      const p = parseFlags('node update', rest, { values: ['--availability', '--role'], multi: ['--label-add', '--label-rm'] });
      requireArgs('node update', p, 1, 1, '[OPTIONS] NODE');
      const ref = p.operands[0] as string;
      withDockerState(root, (state) => {
        const m = managerSwarm(state, ctx.vmid);
        const node = findNode(m, ref);
        for (const label of many(p, '--label-add')) {
          const eq = label.indexOf('=');
          node.labels[eq === -1 ? label : label.slice(0, eq)] = eq === -1 ? '' : label.slice(eq + 1);
        }
        for (const key of many(p, '--label-rm')) {
          if (!Object.hasOwn(node.labels, key)) daemon(`key ${key} doesn't exist in node's labels`);
          delete node.labels[key];
        }
        const availability = one(p, '--availability');
        if (availability !== undefined) {
          if (!['active', 'pause', 'drain'].includes(availability)) daemon(`invalid availability: ${availability}`);
          node.availability = availability as NodeObj['availability'];
        }
        const role = one(p, '--role');
        if (role !== undefined) {
          if (role !== 'manager' && role !== 'worker') daemon(`invalid role: ${role}`);
          node.role = role as NodeObj['role'];
        }
        node.version += 1;
        node.updated = now();
      });
      ctx.out += `${ref}\n`;
      return;
    }
    case 'promote':
    case 'demote': {
      const p = parseFlags(`node ${sub}`, rest, {});
      requireArgs(`node ${sub}`, p, 1, Infinity, 'NODE [NODE...]');
      ctx.out += withDockerState(root, (state) => {
        const m = managerSwarm(state, ctx.vmid);
        return p.operands
          .map((ref) => {
            const node = findNode(m, ref);
            const role = sub === 'promote' ? 'manager' : 'worker';
            if (node.role === role) return `Node ${ref} is already a ${role} in the swarm.\n`;
            node.role = role;
            node.version += 1;
            return `Node ${ref} ${sub}d to a ${role} in the swarm.\n`;
          })
          .join('');
      });
      return;
    }
    case 'rm':
    case 'remove': {
      const p = parseFlags('node rm', rest, { bools: ['--force', '-f'] });
      requireArgs('node rm', p, 1, Infinity, '[OPTIONS] NODE [NODE...]');
      ctx.out += withDockerState(root, (state) => {
        const m = managerSwarm(state, ctx.vmid);
        let out = '';
        for (const ref of p.operands) {
          const node = findNode(m, ref);
          if (node.role === 'manager' && node.status === 'ready') rpc('FailedPrecondition', `node ${node.id} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal`);
          if (node.status !== 'down' && !has(p, '--force', '-f')) rpc('FailedPrecondition', `node ${node.id} is not down and can't be removed`);
          delete m.swarm.nodes[node.id];
          for (const engine of Object.values(state.engines)) if (engine.swarm?.node === node.id) delete engine.swarm;
          out += `${ref}\n`;
        }
        return out;
      });
      return;
    }
    default:
      throw new Fail(1, `docker: 'node ${sub ?? ''}' is not a docker command.\nSee 'docker node --help'\n`);
  }
}

// ---------------------------------------------------------------------------
// Scheduling: which nodes a service's tasks land on

function constraintHolds(node: NodeObj, constraint: string): boolean {
  const m = /^\s*([\w.-]+)\s*(==|!=)\s*(.+?)\s*$/.exec(constraint);
  if (!m) return false;
  const [, key, op, want] = m as unknown as [string, string, string, string];
  let actual: string | undefined;
  if (key === 'node.role') actual = node.role;
  else if (key === 'node.hostname') actual = node.hostname;
  else if (key === 'node.id') actual = node.id;
  else if (key === 'node.platform.os') actual = 'linux';
  else if (key === 'node.platform.arch') actual = 'x86_64';
  else if (key.startsWith('node.labels.')) actual = node.labels[key.slice('node.labels.'.length)];
  return op === '==' ? actual === want : actual !== want;
}

function eligibleNodes(swarm: SwarmObj, service: ServiceObj): NodeObj[] {
  return Object.values(swarm.nodes)
    .filter((n) => n.status === 'ready' && n.availability === 'active' && service.constraints.every((c) => constraintHolds(n, c)))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
}

/** Task slots per node: replicated tasks round-robin over the eligible nodes, one global task per node. */
function placement(swarm: SwarmObj, service: ServiceObj): Array<{ node: NodeObj; slot: number }> {
  const nodes = eligibleNodes(swarm, service);
  if (nodes.length === 0) return [];
  if (service.mode === 'global') return nodes.map((node) => ({ node, slot: 1 }));
  return Array.from({ length: service.replicas }, (_, i) => ({ node: nodes[i % nodes.length] as NodeObj, slot: i + 1 }));
}

function replicasText(swarm: SwarmObj, service: ServiceObj): string {
  const running = placement(swarm, service).length;
  return service.mode === 'global' ? `${running}/${running}` : `${running}/${service.replicas}`;
}

function serviceRow(swarm: SwarmObj, s: ServiceObj): Record<string, unknown> {
  return { ID: s.id.slice(0, 12), Name: s.name, Mode: s.mode, Replicas: replicasText(swarm, s), Image: s.image, Ports: s.ports.join(', ') };
}

function serviceTable(swarm: SwarmObj, services: readonly ServiceObj[]): string {
  return table(
    ['ID', 'NAME', 'MODE', 'REPLICAS', 'IMAGE', 'PORTS'],
    services.map((s) => {
      const r = serviceRow(swarm, s);
      return [String(r.ID), String(r.Name), String(r.Mode), String(r.Replicas), String(r.Image), String(r.Ports)];
    }),
  );
}

function findService(swarm: SwarmObj, ref: string): ServiceObj | undefined {
  return swarm.services[ref] ?? Object.values(swarm.services).find((s) => s.id === ref || (ref.length >= 3 && s.id.startsWith(ref)));
}

function serviceCmd(ctx: Ctx, args: readonly string[]): void {
  const [sub, ...rest] = args;
  const root = rootOf(ctx);
  switch (sub) {
    case 'ls':
    case 'list': {
      const p = parseFlags('service ls', rest, { values: ['--format'], multi: ['--filter', '-f'], bools: ['-q', '--quiet'] });
      const filters = filtersOf(p);
      ctx.out += withDockerState(root, (state) => {
        const { swarm } = managerSwarm(state, ctx.vmid);
        const services = Object.values(swarm.services)
          .filter((s) =>
            filters.every(([k, v]) => {
              if (k === 'name') return s.name.startsWith(v);
              if (k === 'id') return s.id.startsWith(v);
              if (k === 'label') return labelMatches(s.labels, v);
              if (k === 'mode') return s.mode === v;
              return daemon(`invalid filter '${k}'`);
            }),
          )
          .sort((a, b) => (a.name < b.name ? -1 : 1));
        if (has(p, '-q', '--quiet')) return services.map((s) => `${s.id.slice(0, 12)}\n`).join('');
        return formatRows(one(p, '--format'), services.map((s) => serviceRow(swarm, s)), () => serviceTable(swarm, services));
      });
      return;
    }
    case 'inspect': {
      const p = parseFlags('service inspect', rest, { values: ['--format', '-f'], bools: ['--pretty'] });
      requireArgs('service inspect', p, 1, Infinity, '[OPTIONS] SERVICE [SERVICE...]');
      const found = withDockerState(root, (state) => {
        const { swarm } = managerSwarm(state, ctx.vmid);
        return p.operands.map((ref) => {
          const s = findService(swarm, ref);
          if (!s) throw new Fail(1, `Error: no such service: ${ref}\n`, '[]\n');
          return {
            ID: s.id,
            Version: { Index: s.version },
            CreatedAt: s.created,
            UpdatedAt: s.updated,
            Spec: {
              Name: s.name,
              Labels: { ...s.labels },
              TaskTemplate: { ContainerSpec: { Image: s.image, Labels: { ...s.containerLabels }, Args: s.command }, Placement: { Constraints: s.constraints }, ForceUpdate: s.forceUpdate },
              Mode: s.mode === 'global' ? { Global: {} } : { Replicated: { Replicas: s.replicas } },
            },
          };
        });
      });
      const format = one(p, '--format', '-f');
      ctx.out += format !== undefined ? found.map((s) => `${renderFormat(format, s)}\n`).join('') : `${JSON.stringify(found, null, 4)}\n`;
      return;
    }
    case 'update': {
      const p = parseFlags('service update', rest, { values: ['--image', '--replicas'], multi: ['--label-add', '--label-rm', '--secret-add', '--secret-rm'], bools: ['--force', '--detach', '-d', '-q', '--quiet', '--with-registry-auth'] });
      requireArgs('service update', p, 1, 1, '[OPTIONS] SERVICE');
      const ref = p.operands[0] as string;
      withDockerState(root, (state) => {
        const { swarm } = managerSwarm(state, ctx.vmid);
        const s = findService(swarm, ref);
        if (!s) daemon(`service ${ref} not found`);
        const service = s as ServiceObj;
        const image = one(p, '--image');
        if (image !== undefined) service.image = image;
        const replicas = one(p, '--replicas');
        if (replicas !== undefined) service.replicas = Number(replicas);
        for (const label of many(p, '--label-add')) {
          const eq = label.indexOf('=');
          service.labels[eq === -1 ? label : label.slice(0, eq)] = eq === -1 ? '' : label.slice(eq + 1);
        }
        for (const key of many(p, '--label-rm')) delete service.labels[key];
        for (const name of many(p, '--secret-add')) {
          const source = /(?:^|,)source=([^,]+)/.exec(name)?.[1] ?? name.split(',')[0] ?? name;
          if (!swarm.secrets[source]) daemon(`secret not found: ${source}`);
          if (!service.secrets.includes(source)) service.secrets.push(source);
        }
        for (const name of many(p, '--secret-rm')) service.secrets = service.secrets.filter((x) => x !== name);
        if (has(p, '--force')) service.forceUpdate += 1;
        service.version += 1;
        service.updated = now();
      });
      ctx.out += `${ref}\n`;
      if (!has(p, '--detach', '-d', '-q', '--quiet')) ctx.out += 'overall progress: 1 out of 1 tasks \nverify: Service converged \n';
      return;
    }
    case 'rm':
    case 'remove': {
      const p = parseFlags('service rm', rest, {});
      requireArgs('service rm', p, 1, Infinity, 'SERVICE [SERVICE...]');
      ctx.out += withDockerState(root, (state) => {
        const { swarm } = managerSwarm(state, ctx.vmid);
        let out = '';
        for (const ref of p.operands) {
          const s = findService(swarm, ref);
          if (!s) throw new Fail(1, `Error: No such service: ${ref}\n`, out);
          delete swarm.services[s.name];
          out += `${ref}\n`;
        }
        return out;
      });
      return;
    }
    default:
      throw new Fail(1, `docker: 'service ${sub ?? ''}' is not a docker command.\nSee 'docker service --help'\n`);
  }
}

// ---------------------------------------------------------------------------
// secrets

const SECRET_NAME = /^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$/;

function secretUsers(swarm: SwarmObj, name: string): string[] {
  return Object.values(swarm.services)
    .filter((s) => s.secrets.includes(name))
    .map((s) => s.name);
}

function secretCmd(ctx: Ctx, args: readonly string[]): void {
  const [sub, ...rest] = args;
  const root = rootOf(ctx);
  switch (sub) {
    case 'create': {
      const p = parseFlags('secret create', rest, { values: ['--driver', '-d', '--template-driver'], multi: ['--label', '-l'] });
      requireArgs('secret create', p, 1, 2, '[OPTIONS] SECRET [file|-]');
      const [name, file] = p.operands as [string, string | undefined];
      if (file === undefined) throw new Fail(1, `"docker secret create" requires exactly 2 arguments.\nSee 'docker secret create --help'.\n`);
      let data: Buffer;
      if (file === '-') data = ctx.stdin ?? Buffer.alloc(0);
      else {
        const st = ctx.g.stat(file);
        if (!st || !st.isFile()) throw new Fail(1, `open ${file}: no such file or directory\n`);
        data = fs.readFileSync(ctx.g.resolve(file));
      }
      ctx.out += withDockerState(root, (state) => {
        const { swarm } = managerSwarm(state, ctx.vmid);
        if (!SECRET_NAME.test(name)) rpc('InvalidArgument', `invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]`);
        if (data.length === 0 || data.length > 500 * 1024) rpc('InvalidArgument', 'secret data must be larger than 0 and less than 500 KB');
        if (swarm.secrets[name]) rpc('AlreadyExists', `secret ${name} already exists`);
        const t = now();
        const labels: Record<string, string> = {};
        for (const l of many(p, '--label', '-l')) {
          const eq = l.indexOf('=');
          labels[eq === -1 ? l : l.slice(0, eq)] = eq === -1 ? '' : l.slice(eq + 1);
        }
        const secret: SecretObj = { id: newId(state), name, labels, created: t, updated: t, size: data.length, hash: contentHash(data) };
        swarm.secrets[name] = secret;
        return `${secret.id}\n`;
      });
      return;
    }
    case 'ls':
    case 'list': {
      const p = parseFlags('secret ls', rest, { values: ['--format'], multi: ['--filter', '-f'], bools: ['-q', '--quiet'] });
      const filters = filtersOf(p);
      ctx.out += withDockerState(root, (state) => {
        const { swarm } = managerSwarm(state, ctx.vmid);
        const secrets = Object.values(swarm.secrets)
          .filter((s) =>
            filters.every(([k, v]) => {
              if (k === 'name') return s.name.startsWith(v);
              if (k === 'id') return s.id.startsWith(v);
              if (k === 'label') return labelMatches(s.labels, v);
              return daemon(`invalid filter '${k}'`);
            }),
          )
          .sort((a, b) => (a.name < b.name ? -1 : 1));
        if (has(p, '-q', '--quiet')) return secrets.map((s) => `${s.id}\n`).join('');
        const rows = secrets.map((s) => ({ ID: s.id, Name: s.name, Driver: '', CreatedAt: s.created, UpdatedAt: s.updated, Labels: Object.entries(s.labels).map(([k, v]) => `${k}=${v}`).join(',') }));
        return formatRows(one(p, '--format'), rows, () => table(['ID', 'NAME', 'DRIVER', 'CREATED', 'UPDATED'], rows.map((r) => [r.ID, r.Name, r.Driver, 'About a minute ago', 'About a minute ago'])));
      });
      return;
    }
    case 'inspect': {
      const p = parseFlags('secret inspect', rest, { values: ['--format', '-f'], bools: ['--pretty'] });
      requireArgs('secret inspect', p, 1, Infinity, '[OPTIONS] SECRET [SECRET...]');
      const found = withDockerState(root, (state) => {
        const { swarm } = managerSwarm(state, ctx.vmid);
        return p.operands.map((ref) => {
          const s = swarm.secrets[ref] ?? Object.values(swarm.secrets).find((x) => x.id === ref);
          if (!s) throw new Fail(1, `Error: No such secret: ${ref}\n`, '[]\n');
          return { ID: s.id, Version: { Index: 1 }, CreatedAt: s.created, UpdatedAt: s.updated, Spec: { Name: s.name, Labels: { ...s.labels } } };
        });
      });
      const format = one(p, '--format', '-f');
      ctx.out += format !== undefined ? found.map((s) => `${renderFormat(format, s)}\n`).join('') : `${JSON.stringify(found, null, 4)}\n`;
      return;
    }
    case 'rm':
    case 'remove': {
      const p = parseFlags('secret rm', rest, {});
      requireArgs('secret rm', p, 1, Infinity, 'SECRET [SECRET...]');
      ctx.out += withDockerState(root, (state) => {
        const { swarm } = managerSwarm(state, ctx.vmid);
        let out = '';
        for (const ref of p.operands) {
          const s = swarm.secrets[ref] ?? Object.values(swarm.secrets).find((x) => x.id === ref);
          if (!s) throw new Fail(1, `Error response from daemon: secret ${ref} not found\n`, out);
          const users = secretUsers(swarm, s.name);
          if (users.length > 0) rpc('InvalidArgument', `secret '${s.name}' is in use by the following service${users.length === 1 ? '' : 's'}: ${users.join(', ')}`);
          delete swarm.secrets[s.name];
          out += `${ref}\n`;
        }
        return out;
      });
      return;
    }
    default:
      throw new Fail(1, `docker: 'secret ${sub ?? ''}' is not a docker command.\nSee 'docker secret --help'\n`);
  }
}

// ---------------------------------------------------------------------------
// networks

function defaultNetworks(): NetworkObj[] {
  const base = { attachable: false, internal: false, ingress: false, labels: {}, created: '2024-01-01T00:00:00Z' };
  return [
    { ...base, id: 'a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2', name: 'bridge', driver: 'bridge', scope: 'local' },
    { ...base, id: 'b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3', name: 'host', driver: 'host', scope: 'local' },
    { ...base, id: 'c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4', name: 'none', driver: 'null', scope: 'local' },
  ];
}

function visibleNetworks(state: DockerState, vmid: string): NetworkObj[] {
  const engine = engineOf(state, vmid);
  const m = membership(state, vmid);
  const swarmNets = m ? Object.values(m.swarm.networks).filter((n) => m.node.role === 'manager' || n.ingress) : [];
  return [...defaultNetworks(), ...Object.values(engine.networks), ...swarmNets];
}

function networkCmd(ctx: Ctx, args: readonly string[]): void {
  const [sub, ...rest] = args;
  const root = rootOf(ctx);
  switch (sub) {
    case 'ls':
    case 'list': {
      const p = parseFlags('network ls', rest, { values: ['--format'], multi: ['--filter', '-f'], bools: ['-q', '--quiet', '--no-trunc'] });
      const filters = filtersOf(p);
      ctx.out += withDockerState(root, (state) => {
        const nets = visibleNetworks(state, ctx.vmid)
          .filter((n) =>
            filters.every(([k, v]) => {
              if (k === 'name') return n.name.includes(v);
              if (k === 'id') return n.id.startsWith(v);
              if (k === 'driver') return n.driver === v;
              if (k === 'scope') return n.scope === v;
              if (k === 'label') return labelMatches(n.labels, v);
              return daemon(`invalid filter '${k}'`);
            }),
          )
          .sort((a, b) => (a.name < b.name ? -1 : 1));
        const short = (id: string) => (has(p, '--no-trunc') ? id : id.slice(0, 12));
        if (has(p, '-q', '--quiet')) return nets.map((n) => `${short(n.id)}\n`).join('');
        const rows = nets.map((n) => ({ ID: short(n.id), Name: n.name, Driver: n.driver, Scope: n.scope, Labels: Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(',') }));
        return formatRows(one(p, '--format'), rows, () => table(['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], rows.map((r) => [r.ID, r.Name, r.Driver, r.Scope])));
      });
      return;
    }
    case 'create': {
      const p = parseFlags('network create', rest, { values: ['--driver', '-d', '--scope', '--subnet', '--gateway', '--ip-range', '--ipam-driver'], multi: ['--label', '--opt', '-o'], bools: ['--attachable', '--internal', '--ingress', '--ipv6'] });
      requireArgs('network create', p, 1, 1, '[OPTIONS] NETWORK');
      const name = p.operands[0] as string;
      const driver = one(p, '--driver', '-d') ?? 'bridge';
      ctx.out += withDockerState(root, (state) => {
        if (visibleNetworks(state, ctx.vmid).some((n) => n.name === name) || Object.values(state.swarms).some((s) => membership(state, ctx.vmid)?.swarm === s && s.networks[name])) {
          daemon(`network with name ${name} already exists`);
        }
        const labels: Record<string, string> = {};
        for (const l of many(p, '--label')) {
          const eq = l.indexOf('=');
          labels[eq === -1 ? l : l.slice(0, eq)] = eq === -1 ? '' : l.slice(eq + 1);
        }
        const net: NetworkObj = { id: hexId(state), name, driver, scope: driver === 'overlay' || one(p, '--scope') === 'swarm' ? 'swarm' : 'local', attachable: has(p, '--attachable'), internal: has(p, '--internal'), ingress: has(p, '--ingress'), labels, created: now() };
        if (net.scope === 'swarm') managerSwarm(state, ctx.vmid).swarm.networks[name] = net;
        else engineOf(state, ctx.vmid).networks[name] = net;
        return `${net.id}\n`;
      });
      return;
    }
    case 'inspect': {
      const p = parseFlags('network inspect', rest, { values: ['--format', '-f'], bools: ['--verbose', '-v'] });
      requireArgs('network inspect', p, 1, Infinity, '[OPTIONS] NETWORK [NETWORK...]');
      const found = withDockerState(root, (state) => {
        const nets = visibleNetworks(state, ctx.vmid);
        return p.operands.map((ref) => {
          const n = nets.find((x) => x.name === ref || x.id === ref || (ref.length >= 3 && x.id.startsWith(ref)));
          if (!n) throw new Fail(1, `Error response from daemon: network ${ref} not found\n`, '[]\n');
          return { Name: n.name, Id: n.id, Created: n.created, Scope: n.scope, Driver: n.driver, Internal: n.internal, Attachable: n.attachable, Ingress: n.ingress, Labels: { ...n.labels } };
        });
      });
      const format = one(p, '--format', '-f');
      ctx.out += format !== undefined ? found.map((n) => `${renderFormat(format, n)}\n`).join('') : `${JSON.stringify(found, null, 4)}\n`;
      return;
    }
    case 'rm':
    case 'remove': {
      const p = parseFlags('network rm', rest, { bools: ['--force', '-f'] });
      requireArgs('network rm', p, 1, Infinity, 'NETWORK [NETWORK...]');
      ctx.out += withDockerState(root, (state) => {
        let out = '';
        for (const ref of p.operands) {
          const engine = engineOf(state, ctx.vmid);
          const m = membership(state, ctx.vmid);
          if (engine.networks[ref]) delete engine.networks[ref];
          else if (m && m.swarm.networks[ref] && !m.swarm.networks[ref]!.ingress) {
            const users = Object.values(m.swarm.services).filter((s) => s.networks.includes(ref));
            if (users.length > 0) daemon(`rpc error: code = FailedPrecondition desc = network ${m.swarm.networks[ref]!.id} is in use by service ${users[0]!.id}`);
            delete m.swarm.networks[ref];
          } else if (['bridge', 'host', 'none', 'ingress'].includes(ref)) daemon(`${ref} is a pre-defined network and cannot be removed`);
          else throw new Fail(1, `Error response from daemon: network ${ref} not found\n`, out);
          out += `${ref}\n`;
        }
        return out;
      });
      return;
    }
    default:
      throw new Fail(1, `docker: 'network ${sub ?? ''}' is not a docker command.\nSee 'docker network --help'\n`);
  }
}

// ---------------------------------------------------------------------------
// stacks

type Yaml = { parse: (text: string) => unknown };
let yamlModule: Yaml | undefined;
function yaml(): Yaml {
  // Loaded on first use: every simulated pct/qm call imports this module.
  yamlModule ??= createRequire(import.meta.url)('yaml') as Yaml;
  return yamlModule;
}

/** The docker CLI's interpolation with an empty environment. */
function interpolateCompose(value: unknown, where: string): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_m, dollar: string | undefined, braced: string | undefined, op: string | undefined, arg: string | undefined) => {
      if (dollar !== undefined) return '$';
      if (op === '?' || op === ':?') throw new Fail(1, `invalid interpolation format for ${where}: "required variable ${braced} is missing a value: ${arg ?? ''}"\n`);
      if (op === '-' || op === ':-') return arg ?? '';
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateCompose(v, `${where}.[${i}]`));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, interpolateCompose(v, where ? `${where}.${k}` : k)]));
  }
  return value;
}

function labelMap(value: unknown): Record<string, string> {
  if (Array.isArray(value)) {
    return Object.fromEntries(
      value.map((item) => {
        const s = String(item);
        const eq = s.indexOf('=');
        return eq === -1 ? [s, ''] : [s.slice(0, eq), s.slice(eq + 1)];
      }),
    );
  }
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, v === null ? '' : String(v)]));
  return {};
}

const STACK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const TOP_LEVEL = new Set(['version', 'services', 'networks', 'volumes', 'secrets', 'configs', 'name']);
const UNSUPPORTED = ['build', 'restart', 'container_name', 'depends_on', 'links', 'network_mode', 'devices', 'cgroup_parent', 'security_opt', 'userns_mode', 'sysctls'];

function readCompose(ctx: Ctx, file: string): { doc: Record<string, unknown>; dir: string } {
  let text: string;
  let dir = '/';
  if (file === '-') text = (ctx.stdin ?? Buffer.alloc(0)).toString('utf8');
  else {
    const st = ctx.g.stat(file);
    if (!st) throw new Fail(1, `open ${file}: no such file or directory\n`);
    if (st.isDirectory()) throw new Fail(1, `read ${file}: is a directory\n`);
    text = fs.readFileSync(ctx.g.resolve(file), 'utf8');
    dir = path.posix.dirname(path.posix.resolve('/', file));
  }
  let parsed: unknown;
  try {
    parsed = yaml().parse(text);
  } catch (error) {
    throw new Fail(1, `yaml: ${(error as Error).message.split('\n')[0]}\n`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Fail(1, 'Top-level object must be a mapping\n');
  return { doc: parsed as Record<string, unknown>, dir };
}

function stackCmd(ctx: Ctx, args: readonly string[]): void {
  const [sub, ...rest] = args;
  const root = rootOf(ctx);
  switch (sub) {
    case 'deploy':
    case 'up': {
      const p = parseFlags('stack deploy', rest, { values: ['--resolve-image', '--orchestrator'], multi: ['--compose-file', '-c'], bools: ['--with-registry-auth', '--prune', '--detach', '-d', '--quiet', '-q'] });
      requireArgs('stack deploy', p, 1, 1, '[OPTIONS] STACK');
      const stack = p.operands[0] as string;
      const files = many(p, '--compose-file', '-c');
      if (files.length === 0) throw new Fail(1, 'Please specify only one compose file (with --compose-file).\n');
      // Later files are merged over earlier ones at the top level of each section.
      const docs = files.map((f) => readCompose(ctx, f));
      const merged: Record<string, unknown> = {};
      for (const { doc } of docs) {
        for (const [k, v] of Object.entries(doc)) {
          if (!TOP_LEVEL.has(k) && !k.startsWith('x-')) throw new Fail(1, `(root) Additional property ${k} is not allowed\n`);
          merged[k] = v !== null && typeof v === 'object' && !Array.isArray(v) ? { ...((merged[k] as object) ?? {}), ...(v as object) } : v;
        }
      }
      const compose = interpolateCompose(merged, '') as Record<string, unknown>;
      const services = compose.services as Record<string, Record<string, unknown>> | undefined;
      if (!services || typeof services !== 'object' || Object.keys(services).length === 0) throw new Fail(1, 'services must be a mapping\n');
      const composeDir = docs[0]?.dir ?? '/';
      let warnings = '';
      const unsupported = new Set<string>();
      for (const svc of Object.values(services)) for (const key of UNSUPPORTED) if (svc && Object.hasOwn(svc, key)) unsupported.add(key);
      if (unsupported.size > 0) warnings += `Ignoring unsupported options: ${[...unsupported].sort().join(', ')}\n\n`;
      ctx.err += warnings;

      ctx.out += withDockerState(root, (state) => {
        const { swarm } = managerSwarm(state, ctx.vmid);
        if (!STACK_NAME.test(stack)) rpc('InvalidArgument', 'name must be valid as a DNS name component');
        let out = '';
        const namespace = { 'com.docker.stack.namespace': stack };
        const topNetworks = (compose.networks ?? {}) as Record<string, Record<string, unknown> | null>;
        const topSecrets = (compose.secrets ?? {}) as Record<string, Record<string, unknown> | null>;
        const topVolumes = (compose.volumes ?? {}) as Record<string, Record<string, unknown> | null>;

        const externalName = (key: string, spec: Record<string, unknown> | null | undefined): string | undefined => {
          if (!spec) return undefined;
          const ext = spec.external;
          if (ext === true) return (spec.name as string | undefined) ?? key;
          if (ext && typeof ext === 'object') return ((ext as Record<string, unknown>).name as string | undefined) ?? (spec.name as string | undefined) ?? key;
          return undefined;
        };

        // Networks each service uses (default: <stack>_default).
        const netOf = (svcName: string, svc: Record<string, unknown>): string[] => {
          const declared = svc.networks === undefined ? ['default'] : Array.isArray(svc.networks) ? svc.networks.map(String) : Object.keys(svc.networks as object);
          return declared.map((n) => {
            if (n !== 'default' && !Object.hasOwn(topNetworks, n)) throw new Fail(1, `service "${svcName}" refers to undefined network ${n}: invalid compose project\n`);
            return externalName(n, topNetworks[n]) ?? `${stack}_${n}`;
          });
        };
        const toCreate = new Map<string, Record<string, unknown> | null>();
        for (const [svcName, svc] of Object.entries(services)) {
          netOf(svcName, svc ?? {}).forEach((full, i) => {
            const key = (svc?.networks === undefined ? ['default'] : Array.isArray(svc.networks) ? svc.networks.map(String) : Object.keys(svc.networks as object))[i] as string;
            const ext = externalName(key, topNetworks[key]);
            if (ext !== undefined) {
              const net = swarm.networks[ext];
              if (!net) {
                const local = Object.values(engineOf(state, ctx.vmid).networks).find((n) => n.name === ext) ?? defaultNetworks().find((n) => n.name === ext);
                if (local) throw new Fail(1, `network "${ext}" is declared as external, but it is not in the right scope: "local" instead of "swarm"\n`);
                throw new Fail(1, `network "${ext}" is declared as external, but could not be found. You need to create a swarm-scoped network before the stack is deployed\n`);
              }
            } else toCreate.set(full, topNetworks[key] ?? null);
          });
        }

        // Secrets: external ones must exist, file ones are created as <stack>_<name>.
        const secretOf = (svcName: string, ref: unknown): string => {
          const source = typeof ref === 'string' ? ref : String((ref as Record<string, unknown>)?.source ?? '');
          if (!Object.hasOwn(topSecrets, source)) throw new Fail(1, `service "${svcName}" refers to undefined secret ${source}: invalid compose project\n`);
          const spec = topSecrets[source];
          const ext = externalName(source, spec);
          if (ext !== undefined) {
            if (!swarm.secrets[ext]) throw new Fail(1, `service ${svcName}: secret not found: ${ext}\n`);
            return ext;
          }
          return (spec?.name as string | undefined) ?? `${stack}_${source}`;
        };
        const secretFiles = new Map<string, string>();
        for (const [key, spec] of Object.entries(topSecrets)) {
          if (externalName(key, spec) !== undefined) continue;
          const file = spec?.file as string | undefined;
          if (file === undefined) throw new Fail(1, `secret ${key}: must be external or have a file\n`);
          secretFiles.set((spec?.name as string | undefined) ?? `${stack}_${key}`, path.posix.resolve(composeDir, file));
        }

        // Named volumes must be declared.
        for (const [svcName, svc] of Object.entries(services)) {
          for (const v of (svc?.volumes as unknown[] | undefined) ?? []) {
            const source = typeof v === 'string' ? v.split(':')[0] ?? '' : String((v as Record<string, unknown>)?.source ?? '');
            const isNamed = source !== '' && !source.startsWith('/') && !source.startsWith('.') && !source.startsWith('~');
            if (isNamed && !Object.hasOwn(topVolumes, source)) throw new Fail(1, `service "${svcName}" refers to undefined volume ${source}: invalid compose project\n`);
          }
          if (!svc?.image) rpc('InvalidArgument', 'ContainerSpec: image reference must be provided');
          const constraints = (((svc.deploy as Record<string, unknown> | undefined)?.placement as Record<string, unknown> | undefined)?.constraints as unknown[] | undefined) ?? [];
          for (const c of constraints) if (!/^\s*[\w.-]+\s*(==|!=)\s*\S.*$/.test(String(c))) rpc('InvalidArgument', 'constraint expected one operator from ==, !=');
        }

        for (const [name, spec] of toCreate) {
          if (swarm.networks[name]) continue;
          const labels = { ...labelMap(spec?.labels), ...namespace };
          swarm.networks[name] = { id: hexId(state), name, driver: (spec?.driver as string | undefined) ?? 'overlay', scope: 'swarm', attachable: spec?.attachable === true, internal: spec?.internal === true, ingress: false, labels, created: now() };
          out += `Creating network ${name}\n`;
        }
        for (const [name, file] of secretFiles) {
          if (swarm.secrets[name]) continue;
          const st = ctx.g.stat(file);
          if (!st) throw new Fail(1, `open ${file}: no such file or directory\n`, out);
          const data = fs.readFileSync(ctx.g.resolve(file));
          const t = now();
          swarm.secrets[name] = { id: newId(state), name, labels: { ...namespace }, created: t, updated: t, size: data.length, hash: contentHash(data) };
          out += `Creating secret ${name}\n`;
        }

        const wanted = new Set<string>();
        for (const [svcName, svc] of Object.entries(services)) {
          const full = `${stack}_${svcName}`;
          wanted.add(full);
          const deploy = (svc.deploy ?? {}) as Record<string, unknown>;
          const ports = ((svc.ports as unknown[] | undefined) ?? []).map((port) => {
            if (typeof port === 'object' && port !== null) {
              const o = port as Record<string, unknown>;
              return `*:${o.published ?? ''}->${o.target}/${o.protocol ?? 'tcp'}`;
            }
            const [published, target] = String(port).split(':');
            return target === undefined ? `*:->${published}/tcp` : `*:${published}->${target}/tcp`;
          });
          const command = svc.command === undefined ? [] : Array.isArray(svc.command) ? svc.command.map(String) : String(svc.command).split(/\s+/);
          const spec = {
            image: String(svc.image),
            mode: deploy.mode === 'global' ? ('global' as const) : ('replicated' as const),
            replicas: deploy.replicas === undefined ? 1 : Number(deploy.replicas),
            labels: { ...labelMap(deploy.labels), ...namespace },
            containerLabels: { ...labelMap(svc.labels), ...namespace },
            constraints: ((deploy.placement as Record<string, unknown> | undefined)?.constraints as unknown[] | undefined)?.map(String) ?? [],
            ports,
            networks: netOf(svcName, svc),
            secrets: ((svc.secrets as unknown[] | undefined) ?? []).map((ref) => (secretFiles.has(`${stack}_${typeof ref === 'string' ? ref : String((ref as Record<string, unknown>).source)}`) ? `${stack}_${typeof ref === 'string' ? ref : String((ref as Record<string, unknown>).source)}` : secretOf(svcName, ref))),
            command,
          };
          const existing = swarm.services[full];
          const t = now();
          if (existing) {
            Object.assign(existing, spec, { version: existing.version + 1, updated: t });
            out += `Updating service ${full} (id: ${existing.id})\n`;
          } else {
            swarm.services[full] = { id: newId(state), name: full, ...spec, version: 1, forceUpdate: 0, created: t, updated: t };
            out += `Creating service ${full}\n`;
          }
          // Named volumes appear on the nodes the tasks land on.
          for (const { node } of placement(swarm, swarm.services[full] as ServiceObj)) {
            const engine = engineOf(state, node.vmid);
            for (const v of (svc.volumes as unknown[] | undefined) ?? []) {
              const source = typeof v === 'string' ? v.split(':')[0] ?? '' : String((v as Record<string, unknown>)?.source ?? '');
              if (Object.hasOwn(topVolumes, source)) {
                const volume = externalName(source, topVolumes[source]) ?? `${stack}_${source}`;
                if (!engine.volumes.includes(volume)) engine.volumes.push(volume);
              }
            }
          }
        }
        if (has(p, '--prune')) {
          for (const s of Object.values(swarm.services)) {
            if (s.labels['com.docker.stack.namespace'] === stack && !wanted.has(s.name)) {
              delete swarm.services[s.name];
              out += `Removing service ${s.name}\n`;
            }
          }
        }
        return out;
      });
      return;
    }
    case 'ls':
    case 'list': {
      const p = parseFlags('stack ls', rest, { values: ['--format', '--orchestrator'] });
      ctx.out += withDockerState(root, (state) => {
        const { swarm } = managerSwarm(state, ctx.vmid);
        const counts = new Map<string, number>();
        for (const s of Object.values(swarm.services)) {
          const ns = s.labels['com.docker.stack.namespace'];
          if (ns !== undefined) counts.set(ns, (counts.get(ns) ?? 0) + 1);
        }
        const rows = [...counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([Name, Services]) => ({ Name, Services: String(Services) }));
        return formatRows(one(p, '--format'), rows, () => table(['NAME', 'SERVICES'], rows.map((r) => [r.Name, r.Services])));
      });
      return;
    }
    case 'services': {
      const p = parseFlags('stack services', rest, { values: ['--format', '--orchestrator'], multi: ['--filter', '-f'], bools: ['-q', '--quiet'] });
      requireArgs('stack services', p, 1, 1, '[OPTIONS] STACK');
      const stack = p.operands[0] as string;
      const filters = filtersOf(p);
      const result = withDockerState(root, (state) => {
        const { swarm } = managerSwarm(state, ctx.vmid);
        const services = Object.values(swarm.services)
          .filter((s) => s.labels['com.docker.stack.namespace'] === stack)
          .filter((s) => filters.every(([k, v]) => (k === 'name' ? s.name.startsWith(v) : k === 'id' ? s.id.startsWith(v) : k === 'label' ? labelMatches(s.labels, v) : k === 'mode' ? s.mode === v : daemon(`invalid filter '${k}'`))))
          .sort((a, b) => (a.name < b.name ? -1 : 1));
        if (services.length === 0) return { out: '', err: `Nothing found in stack: ${stack}\n` };
        if (has(p, '-q', '--quiet')) return { out: services.map((s) => `${s.id.slice(0, 12)}\n`).join(''), err: '' };
        return { out: formatRows(one(p, '--format'), services.map((s) => serviceRow(swarm, s)), () => serviceTable(swarm, services)), err: '' };
      });
      ctx.out += result.out;
      ctx.err += result.err;
      return;
    }
    case 'rm':
    case 'remove':
    case 'down': {
      const p = parseFlags('stack rm', rest, { values: ['--orchestrator'], bools: ['--detach', '-d'] });
      requireArgs('stack rm', p, 1, Infinity, '[OPTIONS] STACK [STACK...]');
      const result = withDockerState(root, (state) => {
        const { swarm } = managerSwarm(state, ctx.vmid);
        let out = '';
        let err = '';
        for (const stack of p.operands) {
          const inStack = (labels: Record<string, string>) => labels['com.docker.stack.namespace'] === stack;
          const services = Object.values(swarm.services).filter((s) => inStack(s.labels));
          const networks = Object.values(swarm.networks).filter((n) => inStack(n.labels));
          const secrets = Object.values(swarm.secrets).filter((s) => inStack(s.labels));
          if (services.length + networks.length + secrets.length === 0) {
            err += `Nothing found in stack: ${stack}\n`;
            continue;
          }
          for (const s of services.sort((a, b) => (a.name < b.name ? -1 : 1))) {
            delete swarm.services[s.name];
            out += `Removing service ${s.name}\n`;
          }
          for (const s of secrets) {
            delete swarm.secrets[s.name];
            out += `Removing secret ${s.name}\n`;
          }
          for (const n of networks) {
            delete swarm.networks[n.name];
            out += `Removing network ${n.name}\n`;
          }
        }
        return { out, err };
      });
      ctx.out += result.out;
      ctx.err += result.err;
      return;
    }
    default:
      throw new Fail(1, `docker: 'stack ${sub ?? ''}' is not a docker command.\nSee 'docker stack --help'\n`);
  }
}

// ---------------------------------------------------------------------------
// containers and volumes (standalone containers such as the Portainer agent)

function psCmd(ctx: Ctx, args: readonly string[]): void {
  const p = parseFlags('ps', args, { values: ['--format', '-n', '--last'], multi: ['--filter', '-f'], bools: ['-a', '--all', '-q', '--quiet', '--no-trunc', '-s', '--size', '-l', '--latest'] });
  const filters = filtersOf(p);
  ctx.out += withDockerState(rootOf(ctx), (state) => {
    const engine = engineOf(state, ctx.vmid);
    const rows: Array<Record<string, string>> = Object.values(engine.containers)
      .filter((c) => c.running || has(p, '-a', '--all'))
      .map((c) => ({ ID: c.id.slice(0, 12), Image: c.image, Command: `"${c.command.slice(0, 20)}"`, CreatedAt: c.created, Status: c.running ? 'Up 2 minutes' : 'Exited (0) 1 minute ago', Ports: c.ports, Names: c.name }));
    const m = membership(state, ctx.vmid);
    if (m) {
      for (const service of Object.values(m.swarm.services)) {
        for (const { node, slot } of placement(m.swarm, service)) {
          if (node.id !== m.node.id) continue;
          const taskId = `${service.id.slice(0, 8)}${String(slot).padStart(4, '0')}${node.id.slice(0, 13)}`;
          rows.push({ ID: taskId.slice(0, 12), Image: service.image, Command: '""', CreatedAt: service.updated, Status: 'Up 2 minutes', Ports: '', Names: `${service.name}.${service.mode === 'global' ? node.id : slot}.${taskId}` });
        }
      }
    }
    const shown = rows.filter((r) => filters.every(([k, v]) => (k === 'name' ? (r.Names ?? '').includes(v) : k === 'id' ? (r.ID ?? '').startsWith(v) : true)));
    if (has(p, '-q', '--quiet')) return shown.map((r) => `${r.ID}\n`).join('');
    return formatRows(one(p, '--format'), shown, () => table(['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'], shown.map((r) => [r.ID ?? '', r.Image ?? '', r.Command ?? '', 'About a minute ago', r.Status ?? '', r.Ports ?? '', r.Names ?? ''])));
  });
}

function runCmd(ctx: Ctx, args: readonly string[]): void {
  const p = parseFlags('run', args, {
    values: ['--name', '--restart', '--network', '--user', '-u', '--workdir', '-w', '--entrypoint', '--hostname', '-h', '--pull', '--memory', '-m', '--cpus'],
    multi: ['-p', '--publish', '-v', '--volume', '-e', '--env', '--label', '-l', '--mount', '--env-file', '--add-host', '--cap-add', '--device'],
    bools: ['-d', '--detach', '--rm', '-i', '-t', '-it', '--privileged', '--init', '--read-only'],
    stopAtOperand: true,
  });
  if (p.operands.length === 0) throw new Fail(1, `"docker run" requires at least 1 argument.\nSee 'docker run --help'.\n`);
  const [image, ...command] = p.operands as [string, ...string[]];
  const name = one(p, '--name');
  ctx.out += withDockerState(rootOf(ctx), (state) => {
    const engine = engineOf(state, ctx.vmid);
    if (name !== undefined && engine.containers[name]) {
      throw new Fail(125, `docker: Error response from daemon: Conflict. The container name "/${name}" is already in use by container "${engine.containers[name]!.id}". You have to remove (or rename) that container to be able to reuse that name.\nSee 'docker run --help'.\n`);
    }
    const id = hexId(state);
    const container: ContainerObj = {
      id,
      name: name ?? `phoenix_${id.slice(0, 6)}`,
      image,
      command: command.join(' '),
      ports: many(p, '-p', '--publish').map((x) => `0.0.0.0:${x.replace(/:(\d+)$/, '->$1')}/tcp`).join(', '),
      labels: labelMap(many(p, '--label', '-l')),
      created: now(),
      running: true,
    };
    engine.containers[container.name] = container;
    return has(p, '-d', '--detach') ? `${id}\n` : '';
  });
}

function rmCmd(ctx: Ctx, args: readonly string[]): void {
  const p = parseFlags('rm', args, { bools: ['-f', '--force', '-v', '--volumes', '-l', '--link'] });
  requireArgs('rm', p, 1, Infinity, '[OPTIONS] CONTAINER [CONTAINER...]');
  const result = withDockerState(rootOf(ctx), (state) => {
    const engine = engineOf(state, ctx.vmid);
    let out = '';
    let err = '';
    for (const ref of p.operands) {
      const c = engine.containers[ref] ?? Object.values(engine.containers).find((x) => x.id.startsWith(ref));
      if (!c) {
        // `rm -f` of a missing container is not an error (docker >= 20.10).
        if (!has(p, '-f', '--force')) err += `Error response from daemon: No such container: ${ref}\n`;
        continue;
      }
      if (c.running && !has(p, '-f', '--force')) {
        err += `Error response from daemon: cannot remove container "/${c.name}": container is running: stop the container before removing or force remove\n`;
        continue;
      }
      delete engine.containers[c.name];
      out += `${ref}\n`;
    }
    return { out, err };
  });
  ctx.out += result.out;
  if (result.err) throw new Fail(1, result.err, ctx.out);
}

function containerState(c: ContainerObj): Record<string, unknown> {
  return {
    Id: c.id,
    Name: `/${c.name}`,
    Created: c.created,
    State: { Status: c.running ? 'running' : 'exited', Running: c.running, ExitCode: 0 },
    Config: { Image: c.image, Labels: { ...c.labels } },
  };
}

function startStopCmd(command: 'start' | 'stop' | 'restart') {
  return (ctx: Ctx, args: readonly string[]): void => {
    const p = parseFlags(command, args, { values: ['--time', '-t', '--signal', '-s'], bools: ['-a', '--attach', '-i', '--interactive'] });
    requireArgs(command, p, 1, Infinity, 'CONTAINER [CONTAINER...]');
    const result = withDockerState(rootOf(ctx), (state) => {
      const engine = engineOf(state, ctx.vmid);
      let out = '';
      for (const ref of p.operands) {
        const c = engine.containers[ref] ?? Object.values(engine.containers).find((x) => x.id.startsWith(ref));
        if (!c) return { out, err: `Error response from daemon: No such container: ${ref}\n` };
        c.running = command !== 'stop';
        out += `${ref}\n`;
      }
      return { out, err: '' };
    });
    ctx.out += result.out;
    if (result.err) throw new Fail(1, result.err, ctx.out);
  };
}

/** `docker inspect` of containers (what scripts ask: `-f '{{.State.Running}}' NAME`). */
function inspectCmd(ctx: Ctx, args: readonly string[]): void {
  const p = parseFlags('inspect', args, { values: ['--format', '-f', '--type'], bools: ['-s', '--size'] });
  requireArgs('inspect', p, 1, Infinity, '[OPTIONS] NAME|ID [NAME|ID...]');
  const found = withDockerState(rootOf(ctx), (state) => {
    const engine = engineOf(state, ctx.vmid);
    const out: Record<string, unknown>[] = [];
    for (const ref of p.operands) {
      const c = engine.containers[ref] ?? Object.values(engine.containers).find((x) => x.id.startsWith(ref));
      if (!c) return { out, missing: ref };
      out.push(containerState(c));
    }
    return { out, missing: undefined };
  });
  const format = one(p, '--format', '-f');
  ctx.out += format !== undefined ? found.out.map((c) => `${renderFormat(format, c)}\n`).join('') : `${JSON.stringify(found.out, null, 4)}\n`;
  if (found.missing !== undefined) throw new Fail(1, `Error: No such object: ${found.missing}\n`, ctx.out);
}

function volumeCmd(ctx: Ctx, args: readonly string[]): void {
  const [sub, ...rest] = args;
  const root = rootOf(ctx);
  switch (sub) {
    case 'ls':
    case 'list': {
      const p = parseFlags('volume ls', rest, { values: ['--format'], multi: ['--filter', '-f'], bools: ['-q', '--quiet'] });
      ctx.out += withDockerState(root, (state) => {
        const volumes = [...engineOf(state, ctx.vmid).volumes].sort();
        if (has(p, '-q', '--quiet')) return volumes.map((v) => `${v}\n`).join('');
        const rows = volumes.map((v) => ({ Driver: 'local', Name: v }));
        return formatRows(one(p, '--format'), rows, () => table(['DRIVER', 'VOLUME NAME'], rows.map((r) => [r.Driver, r.Name])));
      });
      return;
    }
    case 'create': {
      const p = parseFlags('volume create', rest, { values: ['--driver', '-d', '--name'], multi: ['--label', '--opt', '-o'] });
      const name = one(p, '--name') ?? p.operands[0];
      ctx.out += withDockerState(root, (state) => {
        const engine = engineOf(state, ctx.vmid);
        const volume = name ?? hexId(state);
        if (!engine.volumes.includes(volume)) engine.volumes.push(volume);
        return `${volume}\n`;
      });
      return;
    }
    case 'rm':
    case 'remove': {
      const p = parseFlags('volume rm', rest, { bools: ['-f', '--force'] });
      requireArgs('volume rm', p, 1, Infinity, '[OPTIONS] VOLUME [VOLUME...]');
      ctx.out += withDockerState(root, (state) => {
        const engine = engineOf(state, ctx.vmid);
        let out = '';
        for (const v of p.operands) {
          if (!engine.volumes.includes(v)) {
            if (has(p, '-f', '--force')) continue;
            throw new Fail(1, `Error response from daemon: get ${v}: no such volume\n`, out);
          }
          engine.volumes = engine.volumes.filter((x) => x !== v);
          out += `${v}\n`;
        }
        return out;
      });
      return;
    }
    default:
      throw new Fail(1, `docker: 'volume ${sub ?? ''}' is not a docker command.\nSee 'docker volume --help'\n`);
  }
}

// ---------------------------------------------------------------------------
// Entry

const GLOBAL_VALUE_FLAGS = new Set(['--context', '-c', '--host', '-H', '--config', '--log-level', '-l', '--tlscacert', '--tlscert', '--tlskey']);
const GLOBAL_BOOL_FLAGS = new Set(['--tls', '--tlsverify', '-D', '--debug']);

const commands: Record<string, Handler> = {
  info: infoCmd,
  swarm: swarmCmd,
  node: nodeCmd,
  service: serviceCmd,
  secret: secretCmd,
  network: networkCmd,
  stack: stackCmd,
  volume: volumeCmd,
  ps: psCmd,
  run: runCmd,
  rm: rmCmd,
  start: startStopCmd('start'),
  stop: startStopCmd('stop'),
  restart: startStopCmd('restart'),
  inspect: inspectCmd,
  version: (ctx) => {
    ctx.out += `Client: Docker Engine - Community\n Version:           ${ENGINE_VERSION}\n\nServer: Docker Engine - Community\n Engine:\n  Version:          ${ENGINE_VERSION}\n`;
  },
  system: (ctx, args) => {
    if (args[0] === 'info') return infoCmd(ctx, args.slice(1));
    throw new Fail(1, `simhost: 'docker system ${args[0] ?? ''}' is not simulated\n`);
  },
  container: (ctx, args) => {
    const [sub, ...rest] = args;
    if (sub === 'ls' || sub === 'list' || sub === 'ps') return psCmd(ctx, rest);
    if (sub === 'run') return runCmd(ctx, rest);
    if (sub === 'rm' || sub === 'remove') return rmCmd(ctx, rest);
    if (sub === 'inspect') return inspectCmd(ctx, rest);
    if (sub === 'start' || sub === 'stop' || sub === 'restart') return startStopCmd(sub)(ctx, rest);
    throw new Fail(1, `simhost: 'docker container ${sub ?? ''}' is not simulated\n`);
  },
};

export function dockerProgram(g: GuestFs, argv: readonly string[], options: RunOptions): ExecResult {
  // Containers keep the simulator's rule for unmodelled programs (exit 0,
  // recorded only): the LXC feature tests script docker's answers there.
  if (options.launcher !== 'qemu-ga') return { exit: 0, stdout: '', stderr: '' };
  let i = 0;
  while (i < argv.length && (argv[i] as string).startsWith('-')) {
    const flag = (argv[i] as string).split('=')[0] as string;
    if (flag === '--version' || flag === '-v') return { exit: 0, stdout: `Docker version ${ENGINE_VERSION}, build ce12230\n`, stderr: '' };
    if (GLOBAL_VALUE_FLAGS.has(flag)) i += (argv[i] as string).includes('=') ? 1 : 2;
    else if (GLOBAL_BOOL_FLAGS.has(flag)) i += 1;
    else return { exit: 125, stdout: '', stderr: `unknown flag: ${flag}\nSee 'docker --help'.\n` };
  }
  const [name, ...args] = argv.slice(i);
  if (name === undefined) return { exit: 0, stdout: 'Usage:  docker [OPTIONS] COMMAND\n', stderr: '' };
  const handler = commands[name];
  if (!handler) return { exit: 1, stdout: '', stderr: `docker: '${name}' is not a docker command.\nSee 'docker --help'\n` };
  const ctx: Ctx = { g, options, vmid: options.vmid, stdin: options.stdin, out: '', err: '' };
  try {
    handler(ctx, args);
    return { exit: 0, stdout: ctx.out, stderr: ctx.err };
  } catch (error) {
    if (error instanceof Fail) return { exit: error.exit, stdout: error.stdout || '', stderr: ctx.err + error.message };
    throw error;
  }
}

/** GNU xargs as scripts use it: `xargs [-r] [-0] [-I R] [-n N] command [args]`. */
export function xargsProgram(g: GuestFs, argv: readonly string[], options: RunOptions): ExecResult {
  let replace: string | undefined;
  let noRunIfEmpty = false;
  let nul = false;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '-r' || a === '--no-run-if-empty') noRunIfEmpty = true;
    else if (a === '-0' || a === '--null') nul = true;
    else if (a === '-I') replace = argv[++i];
    else if (a.startsWith('-I')) replace = a.slice(2);
    else if (a === '-n' || a === '-L') i++;
    else if (a === '--') {
      i++;
      break;
    } else break;
  }
  const command = argv.slice(i);
  if (command.length === 0) command.push('echo');
  const input = (options.stdin ?? Buffer.alloc(0)).toString('utf8');
  const items = replace !== undefined ? input.split(nul ? '\0' : '\n').filter((l) => l !== '') : input.split(nul ? '\0' : /\s+/).filter((w) => w !== '');
  if (items.length === 0 && (noRunIfEmpty || replace !== undefined)) return { exit: 0, stdout: '', stderr: '' };
  const runs = replace !== undefined ? items.map((item) => command.map((w) => w.split(replace as string).join(item))) : [[...command, ...items]];
  let stdout = '';
  let stderr = '';
  let status = 0;
  for (const run of runs) {
    const result = runCommand(g, run, { ...options, stdin: Buffer.alloc(0), inShell: false });
    stdout += result.stdout;
    stderr += result.stderr;
    if (result.exit === 255) return { exit: 124, stdout, stderr: `${stderr}xargs: ${run[0]}: exited with status 255; aborting\n` };
    if (result.exit === 127 || result.exit === 126) return { exit: result.exit, stdout, stderr };
    if (result.exit < 0) return { exit: 127, stdout, stderr };
    if (result.exit !== 0) status = 123;
  }
  return { exit: status, stdout, stderr };
}

guestPrograms.docker = dockerProgram;
guestPrograms.xargs ??= xargsProgram;
