// `docker service` (ls, inspect, update, rm) and the scheduling that
// places a service's tasks on nodes (also read by stack and ps).

import { Fail, daemon, managerSwarm, now, rootOf, withDockerState, type Ctx, type NodeObj, type ServiceObj, type SwarmObj } from './state.mts';
import { filtersOf, has, labelMatches, many, one, parseFlags, requireArgs } from './flags.mts';
import { formatRows, renderFormat, table } from './format.mts';

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
export function placement(swarm: SwarmObj, service: ServiceObj): Array<{ node: NodeObj; slot: number }> {
  const nodes = eligibleNodes(swarm, service);
  if (nodes.length === 0) return [];
  if (service.mode === 'global') return nodes.map((node) => ({ node, slot: 1 }));
  return Array.from({ length: service.replicas }, (_, i) => ({ node: nodes[i % nodes.length] as NodeObj, slot: i + 1 }));
}

function replicasText(swarm: SwarmObj, service: ServiceObj): string {
  const running = placement(swarm, service).length;
  return service.mode === 'global' ? `${running}/${running}` : `${running}/${service.replicas}`;
}

export function serviceRow(swarm: SwarmObj, s: ServiceObj): Record<string, unknown> {
  return { ID: s.id.slice(0, 12), Name: s.name, Mode: s.mode, Replicas: replicasText(swarm, s), Image: s.image, Ports: s.ports.join(', ') };
}

export function serviceTable(swarm: SwarmObj, services: readonly ServiceObj[]): string {
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

export function serviceCmd(ctx: Ctx, args: readonly string[]): void {
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
