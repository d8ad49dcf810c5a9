// `docker info` (the engine's view of its swarm) and `docker swarm`
// init / join-token / join / leave.

import { ALREADY_IN_SWARM, ENGINE_VERSION, Fail, SWARM_PORT, daemon, engineOf, identity, managerSwarm, membership, newId, now, rootOf, rpc, withDockerState, type Ctx, type DockerState, type GuestIdentity, type NetworkObj, type NodeObj, type SwarmObj } from './state.mts';
import { has, one, parseFlags, requireArgs } from './flags.mts';
import { renderFormat } from './format.mts';

// ---------------------------------------------------------------------------
// info and swarm

export function infoCmd(ctx: Ctx, args: readonly string[]): void {
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

function validAddr(addr: string): boolean {
  return /^(\d{1,3}\.){3}\d{1,3}(:\d+)?$/.test(addr) || /^[a-z][a-z0-9]*(:\d+)?$/i.test(addr);
}

function makeNode(state: DockerState, vmid: string, ident: GuestIdentity, role: 'manager' | 'worker', addr: string): NodeObj {
  const t = now();
  return { id: newId(state), vmid, hostname: ident.hostname, role, status: 'ready', availability: 'active', addr, labels: {}, leader: false, version: 1, created: t, updated: t };
}

export function swarmCmd(ctx: Ctx, args: readonly string[]): void {
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
