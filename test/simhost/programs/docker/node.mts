// `docker node`: ls, inspect, update, promote / demote, rm.

import { ENGINE_VERSION, Fail, SWARM_PORT, daemon, managerSwarm, now, rootOf, rpc, withDockerState, type Ctx, type Membership, type NodeObj } from './state.mts';
import { filtersOf, has, labelMatches, many, one, parseFlags, requireArgs } from './flags.mts';
import { formatRows, renderFormat, table } from './format.mts';

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

export function nodeCmd(ctx: Ctx, args: readonly string[]): void {
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
