// `docker network`: ls, create, inspect, rm, over the engine's own
// networks and the swarm's.

import { Fail, daemon, engineOf, hexId, managerSwarm, membership, now, rootOf, withDockerState, type Ctx, type DockerState, type NetworkObj } from './state.mts';
import { filtersOf, has, labelMatches, many, one, parseFlags, requireArgs } from './flags.mts';
import { formatRows, renderFormat, table } from './format.mts';

// ---------------------------------------------------------------------------
// networks

export function defaultNetworks(): NetworkObj[] {
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

export function networkCmd(ctx: Ctx, args: readonly string[]): void {
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
