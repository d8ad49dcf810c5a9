// `docker stack`: deploy from compose files (parsed, interpolated, checked),
// ls, services, rm.

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

import { Fail, contentHash, daemon, engineOf, hexId, managerSwarm, newId, now, rootOf, rpc, withDockerState, type Ctx, type ServiceObj } from './state.mts';
import { filtersOf, has, labelMap, labelMatches, many, one, parseFlags, requireArgs } from './flags.mts';
import { formatRows, table } from './format.mts';
import { defaultNetworks } from './network.mts';
import { placement, serviceRow, serviceTable } from './service.mts';

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

export function stackCmd(ctx: Ctx, args: readonly string[]): void {
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
