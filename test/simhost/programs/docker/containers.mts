// Standalone containers (ps, run, rm, start / stop / restart, inspect) and
// volumes.

import { Fail, engineOf, hexId, membership, now, rootOf, withDockerState, type ContainerObj, type Ctx } from './state.mts';
import { filtersOf, has, labelMap, many, one, parseFlags, requireArgs } from './flags.mts';
import { formatRows, renderFormat, table } from './format.mts';
import { placement } from './service.mts';

// ---------------------------------------------------------------------------
// containers and volumes (standalone containers such as the Portainer agent)

export function psCmd(ctx: Ctx, args: readonly string[]): void {
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

export function runCmd(ctx: Ctx, args: readonly string[]): void {
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

export function rmCmd(ctx: Ctx, args: readonly string[]): void {
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

export function startStopCmd(command: 'start' | 'stop' | 'restart') {
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
export function inspectCmd(ctx: Ctx, args: readonly string[]): void {
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

export function volumeCmd(ctx: Ctx, args: readonly string[]): void {
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
