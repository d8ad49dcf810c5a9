// `docker secret`: create (from a file or stdin), ls, inspect, rm.

import fs from 'node:fs';

import { Fail, contentHash, daemon, managerSwarm, newId, now, rootOf, rpc, withDockerState, type Ctx, type SecretObj, type SwarmObj } from './state.mts';
import { filtersOf, has, labelMatches, many, one, parseFlags, requireArgs } from './flags.mts';
import { formatRows, renderFormat, table } from './format.mts';

// ---------------------------------------------------------------------------
// secrets

const SECRET_NAME = /^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$/;

function secretUsers(swarm: SwarmObj, name: string): string[] {
  return Object.values(swarm.services)
    .filter((s) => s.secrets.includes(name))
    .map((s) => s.name);
}

export function secretCmd(ctx: Ctx, args: readonly string[]): void {
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
