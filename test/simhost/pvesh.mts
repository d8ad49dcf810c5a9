// The simulated `pvesh`: read-only API paths the toolkit and operators
// use (`get`/`ls`), with the three output formats of the real CLI: the
// bordered text table, compact JSON and pretty JSON. Unknown paths fail
// with pvesh's own message.

import { parseCommand, type CommandSpec } from './args.mts';
import type { Ctx } from './cli.mts';
import { diskSizeOption, isRunning, loadGuest, runtimeOf, withPending } from './guests.mts';
import { listGuestIds, readConfigFile } from './pveconf.mts';
import { listVolumes, storageStatus } from './storage.mts';
import { die, loadRuntime, type GuestKind, type Runtime } from './state.mts';

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

const getSpec: CommandSpec = {
  name: 'pvesh get',
  args: ['api_path'],
  param: (n) =>
    ({
      api_path: { type: 'string' },
      'output-format': { type: 'string', enum: ['text', 'json', 'json-pretty', 'yaml'] },
      noborder: { type: 'boolean' },
      noheader: { type: 'boolean' },
      quiet: { type: 'boolean' },
      'human-readable': { type: 'boolean' },
      noproxy: { type: 'boolean' },
      type: { type: 'string' },
      content: { type: 'string' },
      full: { type: 'boolean' },
    } as const)[n as 'api_path'],
};

function guestSummary(ctx: Ctx, rt: Runtime, kind: GuestKind, vmid: string): Record<string, Json> | undefined {
  const config = readConfigFile(ctx.root, kind, vmid);
  if (!config) return undefined;
  const running = isRunning(rt, vmid, ctx.root, kind);
  const props = config.main.props;
  const g = runtimeOf(rt, vmid);
  const maxdisk = kind === 'lxc' ? diskSizeOption(props.rootfs ?? '') ?? 0 : diskSizeOption(props.scsi0 ?? props.virtio0 ?? '') ?? 0;
  const summary: Record<string, Json> = {
    vmid: Number(vmid),
    name: kind === 'lxc' ? props.hostname ?? `CT${vmid}` : props.name ?? `VM ${vmid}`,
    status: running ? 'running' : 'stopped',
    type: kind,
    cpus: Number(props.cores ?? 1),
    maxmem: Number((props.memory ?? '512').replace('current=', '')) * 1024 ** 2,
    maxdisk,
    mem: 0,
    disk: 0,
    uptime: running && g.startedAt ? Math.floor((Date.now() - g.startedAt) / 1000) : 0,
    cpu: 0,
    netin: 0,
    netout: 0,
  };
  if (props.template === '1') summary.template = 1;
  if (props.lock) summary.lock = props.lock;
  if (props.tags) summary.tags = props.tags;
  if (running && g.pid) summary.pid = g.pid;
  return summary;
}

/** A node as extract_node_stats reports it (/cluster/resources); /nodes adds the certificate fingerprint. */
function nodeSummary(ctx: Ctx): Record<string, Json> {
  return {
    node: ctx.host.node,
    status: 'online',
    type: 'node',
    id: `node/${ctx.host.node}`,
    cpu: 0.02,
    maxcpu: ctx.host.cpus,
    mem: Math.floor(ctx.host.memory / 8),
    maxmem: ctx.host.memory,
    disk: 8 * 1024 ** 3,
    maxdisk: 100 * 1024 ** 3,
    uptime: 86400,
    level: '',
  };
}

const SSL_FINGERPRINT = '5A:1B:3C:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC';

/** The subdirectories of /nodes/{node} (pve-manager's Nodeinfo index: `name`, not `subdir`). */
const NODE_INDEX = ['aplinfo', 'apt', 'capabilities', 'ceph', 'certificates', 'config', 'disks', 'dns', 'firewall', 'hardware', 'hosts', 'journal', 'lxc', 'migrateall', 'netstat', 'network', 'qemu', 'query-url-metadata', 'replication', 'report', 'rrd', 'rrddata', 'scan', 'services', 'spiceshell', 'startall', 'status', 'stopall', 'storage', 'subscription', 'suspendall', 'syslog', 'tasks', 'termproxy', 'time', 'version', 'vncshell', 'vzdump', 'wakeonlan', 'sdn'];

function storageSummaries(ctx: Ctx, rt: Runtime): Array<Record<string, Json>> {
  return Object.entries(rt.storage)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([id, s]) => {
      const st = storageStatus(rt, id);
      return {
        storage: id,
        type: s.type,
        content: [...s.content].sort().join(','),
        active: s.disabled ? 0 : 1,
        enabled: s.disabled ? 0 : 1,
        shared: s.shared ? 1 : 0,
        total: st.total,
        used: st.used,
        avail: st.avail,
        used_fraction: st.total ? st.used / st.total : 0,
        node: ctx.host.node,
      };
    });
}

function resolvePath(ctx: Ctx, apiPath: string, opts: Record<string, string>): Json {
  const rt = loadRuntime(ctx.root);
  const parts = apiPath.split('/').filter(Boolean);
  const node = ctx.host.node;
  const noHandler = (): never => die(`no 'get' handler for '${apiPath}'`);
  if (parts.length === 0) return [{ subdir: 'access' }, { subdir: 'cluster' }, { subdir: 'nodes' }, { subdir: 'pools' }, { subdir: 'storage' }, { subdir: 'version' }];
  if (parts[0] === 'version' && parts.length === 1) return { version: ctx.host.pveVersion, release: ctx.host.pveVersion.split('.').slice(0, 2).join('.'), repoid: 'b6a6f6ed1' };
  if (parts[0] === 'storage' && parts.length === 1) {
    return Object.entries(rt.storage).map(([id, s]) => ({ storage: id, type: s.type, content: [...s.content].sort().join(','), ...(s.path ? { path: s.path } : {}), ...(s.pool ? { pool: s.pool } : {}), ...(s.shared ? { shared: 1 } : {}), digest: '0' }));
  }
  if (parts[0] === 'cluster') {
    if (parts[1] === 'resources' && parts.length === 2) {
      const out: Array<Record<string, Json>> = [];
      const type = opts.type;
      if (type !== undefined && !['vm', 'storage', 'node', 'sdn'].includes(type)) {
        die(`400 Parameter verification failed.\ntype: value '${type}' does not have a value in the enumeration 'vm, storage, node, sdn'\npvesh get <api_path> [OPTIONS] [FORMAT_OPTIONS]`);
      }
      if (!type || type === 'vm') {
        for (const kind of ['qemu', 'lxc'] as const) {
          for (const id of listGuestIds(ctx.root, kind)) {
            const s = guestSummary(ctx, rt, kind, id);
            if (s) out.push({ ...s, id: `${kind}/${id}`, node });
          }
        }
      }
      if (!type || type === 'node') out.push({ ...nodeSummary(ctx), 'cgroup-mode': 2 });
      if (!type || type === 'storage') {
        for (const s of storageSummaries(ctx, rt)) {
          out.push({ id: `storage/${node}/${s.storage}`, storage: s.storage!, type: 'storage', node, status: 'available', plugintype: s.type!, content: s.content!, disk: s.used!, maxdisk: s.total!, shared: s.shared! });
        }
      }
      return out;
    }
    if (parts[1] === 'nextid' && parts.length === 2) {
      let id = 100;
      while (readConfigFile(ctx.root, 'lxc', String(id)) || readConfigFile(ctx.root, 'qemu', String(id))) id++;
      return String(id);
    }
    // A node outside any cluster: no `cluster` entry, only the local node (pve-manager's "fake entry").
    if (parts[1] === 'status' && parts.length === 2) return [{ type: 'node', id: `node/${node}`, name: node, ip: ctx.host.ip, local: 1, nodeid: 0, online: 1, level: '' }];
    return noHandler();
  }
  if (parts[0] !== 'nodes') return noHandler();
  if (parts.length === 1) return [{ ...nodeSummary(ctx), ssl_fingerprint: SSL_FINGERPRINT }];
  if (parts[1] !== node && parts[1] !== 'localhost') {
    die(`hostname lookup '${parts[1]}' failed - failed to get address info for: ${parts[1]}: Name or service not known`);
  }
  if (parts.length === 2) return NODE_INDEX.map((name) => ({ name }));
  const section = parts[2];
  if (section === 'status' && parts.length === 3) {
    const used = Math.floor(ctx.host.memory / 8);
    return {
      uptime: 86400,
      cpu: 0.02,
      wait: 0,
      idle: 0,
      loadavg: ['0.12', '0.10', '0.09'],
      cpuinfo: { cpus: ctx.host.cpus, cores: ctx.host.cpus / 2, sockets: 1, model: 'Simulated CPU', mhz: '3000.000', hvm: '1', user_hz: 100, flags: 'fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov' },
      memory: { total: ctx.host.memory, used, free: ctx.host.memory - used },
      swap: { total: 8 * 1024 ** 3, used: 0, free: 8 * 1024 ** 3 },
      rootfs: { total: 100 * 1024 ** 3, used: 8 * 1024 ** 3, free: 92 * 1024 ** 3, avail: 87 * 1024 ** 3 },
      ksm: { shared: 0 },
      kversion: 'Linux 6.8.12-4-pve #1 SMP PREEMPT_DYNAMIC PMX 6.8.12-4 (2024-11-06T15:04Z)',
      'current-kernel': { sysname: 'Linux', release: '6.8.12-4-pve', version: '#1 SMP PREEMPT_DYNAMIC PMX 6.8.12-4 (2024-11-06T15:04Z)', machine: 'x86_64' },
      'boot-info': { mode: 'efi', secureboot: 0 },
      pveversion: `pve-manager/${ctx.host.pveVersion}/2a5fa54a8503f96d`,
    };
  }
  if (section === 'storage') {
    if (parts.length === 3) return storageSummaries(ctx, rt);
    const id = parts[3]!;
    if (!rt.storage[id]) die(`storage '${id}' does not exist`);
    if (parts.length === 4) return [{ subdir: 'content' }, { subdir: 'status' }];
    if (parts[4] === 'status' && parts.length === 5) return storageSummaries(ctx, rt).find((s) => s.storage === id)!;
    if (parts[4] === 'content' && parts.length === 5) {
      return listVolumes(rt, id)
        .filter((v) => !opts.content || v.content === opts.content)
        .map((v) => ({ volid: v.volid, content: v.content, format: v.format, size: v.size, ...(v.vmid ? { vmid: v.vmid } : {}) }));
    }
    return noHandler();
  }
  if (section === 'lxc' || section === 'qemu') {
    const kind: GuestKind = section;
    if (parts.length === 3) {
      return listGuestIds(ctx.root, kind)
        .map((id) => guestSummary(ctx, rt, kind, id))
        .filter((s): s is Record<string, Json> => s !== undefined);
    }
    const vmid = parts[3]!;
    const config = loadGuest(ctx, kind, vmid);
    if (parts.length === 4) return ['config', 'firewall', 'snapshot', 'status'].map((subdir) => ({ subdir }));
    const rest = parts.slice(4).join('/');
    if (rest === 'config') {
      const shown = withPending(config);
      const out: Record<string, Json> = {};
      for (const [k, v] of Object.entries(shown.props)) out[k] = /^\d+$/.test(v) && !/^(hwaddr|net\d+|name|hostname)$/.test(k) ? Number(v) : v;
      if (shown.description) out.description = shown.description;
      out.digest = '0';
      return out;
    }
    if (rest === 'status/current') {
      const s = guestSummary(ctx, rt, kind, vmid)!;
      return { ...s, ha: { managed: 0 }, ...(kind === 'qemu' ? { qmpstatus: s.status!, agent: config.main.props.agent ? 1 : 0 } : {}) };
    }
    if (rest === 'snapshot') {
      const list: Array<Record<string, Json>> = Object.entries(config.snapshots).map(([name, snap]) => ({
        name,
        description: snap.description,
        snaptime: Number(snap.props.snaptime ?? 0),
        ...(snap.props.parent ? { parent: snap.props.parent } : {}),
      }));
      list.push({ name: 'current', description: 'You are here!', running: isRunning(rt, vmid, ctx.root, kind) ? 1 : 0, ...(config.main.props.parent ? { parent: config.main.props.parent } : {}) });
      return list;
    }
    return noHandler();
  }
  return noHandler();
}

// ---------------------------------------------------------------------------
// Output

function perlPretty(value: Json, indent = ''): string {
  const next = `${indent}   `;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => `${next}${perlPretty(v, next)}`).join(',\n')}\n${indent}]`;
  }
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    if (keys.length === 0) return '{}';
    return `{\n${keys.map((k) => `${next}${JSON.stringify(k)} : ${perlPretty(value[k]!, next)}`).join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value);
}

function canonical(value: Json): Json {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical(value[k]!)]));
  return value;
}

function cell(v: Json | undefined): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** PVE::CLIFormatter's bordered table (UTF-8 box drawing, ═ under the header). */
function borderTable(header: string[], rows: string[][], noborder: boolean, noheader: boolean): string {
  const widths = header.map((h, i) => Math.max(noheader ? 0 : h.length, ...rows.map((r) => r[i]!.length)));
  if (noborder) {
    const line = (r: string[]) => `${r.map((c, i) => c.padEnd(widths[i]!)).join(' ').trimEnd()}\n`;
    return (noheader ? '' : line(header)) + rows.map(line).join('');
  }
  const bar = (l: string, m: string, r: string, fill: string) => `${l}${widths.map((w) => fill.repeat(w + 2)).join(m)}${r}\n`;
  const line = (r: string[]) => `│ ${r.map((c, i) => c.padEnd(widths[i]!)).join(' │ ')} │\n`;
  let out = bar('┌', '┬', '┐', '─');
  if (!noheader) out += line(header) + bar('╞', '╪', '╡', '═');
  rows.forEach((r, i) => {
    out += line(r);
    if (i < rows.length - 1) out += bar('├', '┼', '┤', '─');
  });
  return out + bar('└', '┴', '┘', '─');
}

type Renderer = (v: Json | undefined) => string;

function renderBytes(v: Json | undefined): string {
  if (typeof v !== 'number') return cell(v);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  const unit = v > 1023 ? Math.floor(Math.log(v) / Math.log(1024)) : 0;
  return `${(v / 1024 ** unit).toFixed(2)} ${units[unit]}`;
}

function renderDuration(v: Json | undefined): string {
  if (typeof v !== 'number') return cell(v);
  let rest = Math.round(v);
  const parts: string[] = [];
  for (const [unit, length] of [['w', 604800], ['d', 86400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    const n = Math.floor(rest / length);
    if (n > 0) {
      parts.push(`${n}${unit}`);
      rest -= n * length;
    }
  }
  return parts.join(' ');
}

const renderPercent: Renderer = (v) => (typeof v === 'number' ? `${(v * 100).toFixed(2)}%` : cell(v));

/**
 * The columns pvesh prints for a path: the return schema's properties,
 * required ones first, each group sorted (CLIFormatter's
 * extract_properties_to_print), with their renderers under --human-readable.
 */
const SCHEMA_COLUMNS: Array<{ path: RegExp; columns: Array<[string, Renderer?]> }> = [
  { path: /^\/nodes\/?$/, columns: [['node'], ['status'], ['cpu', renderPercent], ['level'], ['maxcpu'], ['maxmem', renderBytes], ['mem', renderBytes], ['ssl_fingerprint'], ['uptime', renderDuration]] },
  { path: /^\/cluster\/status\/?$/, columns: [['id'], ['name'], ['type'], ['ip'], ['level'], ['local'], ['nodeid'], ['nodes'], ['online'], ['quorate'], ['version']] },
];

function textOutput(data: Json, opts: Record<string, string>, apiPath = ''): string {
  const noborder = opts.noborder === '1';
  const noheader = opts.noheader === '1';
  const human = opts['human-readable'] !== '0';
  if (Array.isArray(data)) {
    if (data.length === 0) return '';
    if (data.every((d) => d !== null && typeof d === 'object' && !Array.isArray(d))) {
      const objects = data as Array<Record<string, Json>>;
      const schema = SCHEMA_COLUMNS.find((s) => s.path.test(apiPath))?.columns;
      if (schema) {
        const rows = objects.map((o) => schema.map(([k, render]) => (human && render && o[k] !== undefined ? render(o[k]) : cell(o[k]))));
        return borderTable(schema.map(([k]) => k), rows, noborder, noheader);
      }
      const keys = [...new Set(objects.flatMap((o) => Object.keys(o)))].sort();
      const first = ['subdir', 'vmid', 'node', 'storage', 'id', 'name'].filter((k) => keys.includes(k));
      const header = [...first, ...keys.filter((k) => !first.includes(k))];
      const rows = objects.map((o) => header.map((k) => cell(o[k])));
      return borderTable(header, rows, noborder, noheader);
    }
    return data.map((d) => `${cell(d)}\n`).join('');
  }
  if (data !== null && typeof data === 'object') {
    const rows = Object.keys(data).sort().map((k) => [k, cell(data[k])]);
    return borderTable(['key', 'value'], rows, noborder, noheader);
  }
  return `${cell(data)}\n`;
}

export function runPvesh(ctx: Ctx): void {
  const verb = ctx.verb(ctx.argv[0], ['get', 'ls', 'usage'], ['create', 'set', 'delete', 'help']);
  const p = parseCommand({ ...getSpec, name: `pvesh ${verb}` }, ctx.argv.slice(1));
  ctx.begin();
  const apiPath = p.args.api_path!;
  const data = resolvePath(ctx, apiPath, p.opts);
  if (verb === 'usage') {
    ctx.out(`USAGE: pvesh get ${apiPath}\n`);
    return;
  }
  if (verb === 'ls') {
    const list = Array.isArray(data) ? data : [];
    ctx.out(list.map((d) => `dr--        ${cell((d as Record<string, Json>)?.subdir ?? (d as Record<string, Json>)?.name ?? (d as Record<string, Json>)?.vmid ?? (d as Record<string, Json>)?.node ?? (d as Record<string, Json>)?.storage ?? '')}\n`).join(''));
    return;
  }
  if (p.opts.quiet === '1') return;
  switch (p.opts['output-format'] ?? 'text') {
    case 'json':
      ctx.out(`${JSON.stringify(canonical(data))}\n`);
      return;
    case 'json-pretty':
      ctx.out(`${perlPretty(data)}\n`);
      return;
    case 'yaml':
      ctx.out(`---\n${JSON.stringify(canonical(data), null, 2)}\n`);
      return;
    default:
      ctx.out(textOutput(data, p.opts, apiPath));
  }
}
